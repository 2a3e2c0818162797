"""The papers' claims a demo tests, read from ``benchmarks/claims.yaml``, and the verdict on measured values.

A claim is written down before its demo runs: which groups it compares (treatment against control, one pair or
several), the metric and which way is better, the margin, the seeds, and in how many of the paired seeds the
treatment must win. The demo hands over its per-seed values and prints what this module says — the mean ± sd of
both sides, the wins, and "holds" or "does not hold" — so no verdict is written by hand after the numbers are in.

Each entry also says how far it is evidence: ``blind`` (true, or why not: a result of the same comparison was seen
before the criterion was written), the ``regime`` it was run in (the backbone's start: ``imagenet`` weights, a
``random init`` where the paper used ImageNet weights, or ``as the paper`` for methods trained from scratch), and,
for an entry that cannot fail, why: ``sanity`` (an identity, e.g. a positive temperature keeps the argmax) or
``built_in`` (the stand-in decides it by construction). Those two are shown but not counted as paper claims.

Example:
    >>> claim = Claim(id="c", paper="p", claim="k", demo="make demo", metric="err", better="lower",
    ...               pairs=[("mixed", "plain")], seeds=[0, 1, 2], wins=3)
    >>> judge(claim, {"mixed": {0: 9.0, 1: 9.5, 2: 9.1}, "plain": {0: 10.0, 1: 10.2, 2: 9.9}}).holds
    True
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

CLAIMS = Path(__file__).resolve().parent / "claims.yaml"
REQUIRED = ("id", "paper", "claim", "demo", "metric", "better", "pairs", "seeds", "wins", "blind", "regime")
REGIMES = ("imagenet", "random init", "as the paper")


class ClaimError(ValueError):
    """claims.yaml holds an entry that cannot be judged (a missing key, an unknown direction, ...)."""


@dataclass
class Claim:
    """One pre-registered criterion. ``pairs``: (treatment, control) group names; ``require``: whether every
    pair must hold (``all``) or one is enough (``any``, e.g. "at least one more calibrator")."""

    id: str
    paper: str
    claim: str
    demo: str
    metric: str
    better: Literal["lower", "higher", "equal", "at least"]
    pairs: list[tuple[str, str]]
    seeds: list[int]
    wins: int
    margin: float = 0.0
    require: Literal["all", "any"] = "all"
    data: str = ""
    notes: str = ""
    blind: bool | str = True  # True, or why not (what was seen before the criterion was written)
    regime: str = "as the paper"
    sanity: str = ""  # why it cannot fail (an identity): shown, not counted as a paper claim
    built_in: str = ""  # why the stand-in decides it by construction: shown, not counted
    values_of: str = ""  # judged on the values recorded for that claim (the same runs)
    extra: dict = field(default_factory=dict)

    @property
    def counted(self) -> bool:
        """Whether the claim could have failed, so its verdict counts as evidence about the paper."""
        return not (self.sanity or self.built_in)


@dataclass
class Verdict:
    claim: Claim
    holds: bool
    rows: list[str]  # one markdown row per pair
    measured: list[str] = field(
        default_factory=list
    )  # per pair: "treatment mean ± sd vs control ..., wins w / n"


def load_claims(
    path: str | Path = CLAIMS, demo: str | None = None, regime: str | None = None
) -> dict[str, Claim]:
    """Every claim in ``path`` (only those of ``demo``, e.g. ``make demo-mixing``, and of ``regime``, when
    given), by id."""
    path = Path(path)
    entries = (yaml.safe_load(path.read_text()) or {}).get("claims") or []
    claims: dict[str, Claim] = {}
    for number, entry in enumerate(entries, start=1):
        missing = [k for k in REQUIRED if k not in entry]
        name = entry.get("id", f"entry {number}")
        if missing:
            raise ClaimError(f"{path}: claim {name!r} lacks {', '.join(missing)}")
        if entry["better"] not in ("lower", "higher", "equal", "at least"):
            raise ClaimError(
                f"{path}: claim {name!r}: better must be lower, higher, equal or at least, got {entry['better']!r}"
            )
        if entry.get("require", "all") not in ("all", "any"):
            raise ClaimError(f"{path}: claim {name!r}: require must be all or any, got {entry['require']!r}")
        if entry["regime"] not in REGIMES:
            raise ClaimError(
                f"{path}: claim {name!r}: regime must be one of {REGIMES}, got {entry['regime']!r}"
            )
        if entry["blind"] is not True and not (isinstance(entry["blind"], str) and entry["blind"].strip()):
            raise ClaimError(
                f"{path}: claim {name!r}: blind must be true or say why not, got {entry['blind']!r}"
            )
        if not 1 <= entry["wins"] <= len(entry["seeds"]):
            raise ClaimError(f"{path}: claim {name!r}: wins must be between 1 and the number of seeds")
        if name in claims:
            raise ClaimError(f"{path}: claim id {name!r} appears twice")
        known = set(Claim.__dataclass_fields__) - {"extra", "pairs"}
        pairs = [tuple(p) for p in entry["pairs"]]
        if not pairs or any(len(p) != 2 for p in pairs):
            raise ClaimError(f"{path}: claim {name!r}: pairs must be [treatment, control] lists")
        claims[name] = Claim(
            **{k: v for k, v in entry.items() if k in known},
            pairs=pairs,
            extra={k: v for k, v in entry.items() if k not in known | {"pairs"}},
        )
    if demo is not None:
        claims = {k: c for k, c in claims.items() if c.demo == demo}
    if regime is not None:
        claims = {k: c for k, c in claims.items() if c.regime == regime}
    return claims


def won(claim: Claim, treatment: float, control: float) -> bool:
    """Whether one paired seed goes the claim's way by more than its margin (within it, for ``equal``; for
    ``at least``, the treatment is not below the control by more than the margin: "keeps or raises")."""
    if claim.better == "lower":
        return control - treatment > claim.margin
    if claim.better == "higher":
        return treatment - control > claim.margin
    if claim.better == "at least":
        return treatment - control >= -claim.margin
    return abs(treatment - control) <= claim.margin


def judge(claim: Claim, values: dict[str, dict[int, float]], digits: int = 2) -> Verdict:
    """The verdict on ``values`` (group -> seed -> metric); a group or seed that is missing is an error."""
    rows, held, measured = [], [], []
    for treatment, control in claim.pairs:
        for group in (treatment, control):
            absent = [s for s in claim.seeds if s not in values.get(group, {})]
            if absent:
                raise ClaimError(f"claim {claim.id!r}: no {claim.metric} for {group!r} at seeds {absent}")
        wins = sum(won(claim, values[treatment][s], values[control][s]) for s in claim.seeds)
        holds = wins >= claim.wins
        held.append(holds)
        means = [mean_sd([values[g][s] for s in claim.seeds], digits) for g in (treatment, control)]
        measured.append(f"{means[0]} vs {means[1]}, {wins} / {len(claim.seeds)} seeds")
        rows.append(
            f"| {claim.id} | {treatment} vs {control} | {claim.metric}, {claim.better}"
            f"{f' by > {claim.margin:g}' if claim.better in ('lower', 'higher') and claim.margin else ''}"
            f"{f' within {claim.margin:g}' if claim.better in ('equal', 'at least') else ''}, "
            f"{claim.wins} of {len(claim.seeds)} seeds | "
            f"{mean_sd([values[treatment][s] for s in claim.seeds], digits)} | "
            f"{mean_sd([values[control][s] for s in claim.seeds], digits)} | {wins} / {len(claim.seeds)} | "
            f"{'holds' if holds else 'does not hold'} |"
        )
    overall = all(held) if claim.require == "all" else any(held)
    return Verdict(claim, overall, rows, measured)


def verdict_table(claims: dict[str, Claim], values: dict[str, dict[int, float]], digits: int = 2) -> str:
    """The markdown table of every claim's verdict on ``values`` (a claim over several pairs ends with its
    overall verdict)."""
    lines = [
        "| claim | compared | criterion (stated in benchmarks/claims.yaml before the runs) | treatment | control | wins | verdict |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for claim in claims.values():
        verdict = judge(claim, values, digits)
        lines += verdict.rows
        if len(claim.pairs) > 1:
            lines.append(
                f"| {claim.id} | {claim.require} of the {len(claim.pairs)} pairs | | | | | "
                f"**{'holds' if verdict.holds else 'does not hold'}** |"
            )
    return "\n".join(lines) + "\n"


def claims_section(
    claims: dict[str, Claim],
    values_for: Callable[[Claim], dict[str, dict[int, float]]],
    digits: int = 2,
) -> tuple[str, dict[str, dict[str, dict[int, float]]]]:
    """The verdict table of ``claims`` on the values ``values_for(claim)`` gives each, and those values by claim
    id (what a demo records in ``benchmarks/demos/<demo>.json`` for ``scripts/check_claims.py``)."""
    judged = {claim.id: values_for(claim) for claim in claims.values()}
    tables = [verdict_table({claim.id: claim}, judged[claim.id], digits) for claim in claims.values()]
    header, rows = tables[0].splitlines()[:2], [line for t in tables for line in t.splitlines()[2:]]
    return "\n".join(header + rows) + "\n", judged


def judge_available(
    claims: dict[str, Claim],
    values_for: Callable[[Claim], dict[str, dict[int, float]] | None],
    digits: int = 2,
) -> tuple[str, dict[str, dict[str, dict[int, float]]]]:
    """:func:`claims_section` of those ``claims`` whose values exist: ``values_for(claim)`` is None while a run
    the claim needs is missing, and that claim is left out rather than judged; ``("", {})`` when none is left."""
    values = {claim.id: values_for(claim) for claim in claims.values()}
    ready = {cid: claim for cid, claim in claims.items() if values[cid] is not None}
    if not ready:
        return "", {}
    return claims_section(ready, lambda claim: values[claim.id], digits)


def mean_sd(values: list[float], digits: int = 2) -> str:
    """``mean ± sd`` (the sample standard deviation); one value alone, with no spread to show."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"
