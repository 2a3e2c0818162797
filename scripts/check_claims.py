"""`make claims`: every claim of ``benchmarks/claims.yaml`` judged on what its demo recorded, as one board.

Each demo run with ``--readme`` records the values it judged each claim on in ``benchmarks/demos/<demo>.json``
(with its command, commit and date). This reads those files — it runs nothing — and writes
``benchmarks/claims.md``: per claim the paper, the claim, the criterion, the measured means, and "holds", "does not
hold" or "not run" (with the demo to run, or the ``blocked`` reason its entry gives). The verdicts are recomputed here from the recorded values, so a
criterion changed in ``claims.yaml`` shows at once.

    python scripts/check_claims.py [--demos benchmarks/demos] [--out benchmarks/claims.md]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.claims import CLAIMS, Claim, judge, load_claims  # noqa: E402


def recorded_values(demos: Path) -> dict[str, tuple[dict[str, dict[int, float]], dict]]:
    """claim id -> (its values, group -> seed -> value, and the record that holds them)."""
    found = {}
    for path in sorted(demos.glob("*.json")):
        record = json.loads(path.read_text())
        for claim_id, values in (record.get("claims") or {}).items():
            seeds = {
                group: {int(s): float(v) for s, v in per_seed.items()} for group, per_seed in values.items()
            }
            found[claim_id] = (seeds, {**record, "file": path.name})
    return found


HEADER = (
    "| claim | paper | regime | compared | criterion | blind | measured (treatment vs control, mean ± sd) "
    "| verdict | record (commit) |"
)


def board(claims: dict[str, Claim], found: dict[str, tuple[dict, dict]]) -> str:
    """The board: the claims that could have failed, counted in the summary; then, shown but not counted, the
    sanity checks (identities) and the claims the stand-in decides by construction."""
    counted = [c for c in claims.values() if c.counted]
    rows = {c.id: _row(c, found) for c in claims.values()}
    verdicts = [rows[c.id][1] for c in counted]
    lines = [
        "# The papers' claims, measured",
        "",
        "Written by `make claims` (`python scripts/check_claims.py`) from `benchmarks/claims.yaml` and the values the "
        "demos recorded in `benchmarks/demos/*.json`. *blind*: whether the criterion was written before any result "
        "of that comparison was seen (else what had been seen). *regime*: the backbone's start (`imagenet` weights; "
        "`random init` where the paper starts from ImageNet weights; `as the paper` for methods trained from "
        "scratch). *record*: the demo record and the commit it ran at (`+changes`: the code had uncommitted "
        "changes, so git does not hold exactly what ran).",
        "",
        f"**{len(counted)} claims that could have failed: {verdicts.count('holds')} hold, "
        f"{verdicts.count('does not hold')} do not hold, {verdicts.count('not run')} not run** "
        f"({sum(1 for c in counted if c.blind is True)} of them blind). Not counted: "
        f"{len(claims) - len(counted)} rows that cannot fail, at the end.",
        "",
        HEADER,
        "|---|---|---|---|---|---|---|---|---|",
        *(rows[c.id][0] for c in counted),
    ]
    uncounted = [c for c in claims.values() if not c.counted]
    if uncounted:
        lines += [
            "",
            "## Shown, not counted: rows that cannot fail",
            "",
            "Each says why: an identity (a sanity check of the code), or a property the stand-in was built to have.",
            "",
            HEADER.replace("| verdict |", "| verdict | why it cannot fail |"),
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for claim in uncounted:
            why = f"sanity check: {claim.sanity}" if claim.sanity else f"built in: {claim.built_in}"
            row = rows[claim.id][0]
            verdict_end = row.rindex(" | ", 0, len(row) - 2)  # before the record column
            lines.append(row[:verdict_end] + f" | {why}" + row[verdict_end:])
    return "\n".join(lines) + "\n"


def _row(claim: Claim, found: dict[str, tuple[dict, dict]]) -> tuple[str, str]:
    """(the claim's markdown row, its verdict: holds / does not hold / not run)."""
    blind = "yes" if claim.blind is True else str(claim.blind)
    start = f"| {claim.claim} | {claim.paper} | {claim.regime} | {_pairs(claim)} | {_criterion(claim)} | {blind} |"
    key = claim.values_of or claim.id
    if key not in found:
        why = claim.extra.get("blocked")
        status = f"not run: {why}" if why else f"not run (`{claim.demo}` records it)"
        return f"{start} — | {status} | — |", "not run"
    values, record = found[key]
    verdict = judge(claim, values)
    commit = record.get("commit", "?")
    source = f"`{record['file']}` ({commit}, {record.get('date', '?')})"
    if commit.endswith("+changes"):
        source += ", uncommitted code"
    word = "holds" if verdict.holds else "does not hold"
    return f"{start} {'; '.join(verdict.measured)} | **{word}** | {source} |", word


def time_section(demos: Path, makefile: Path = REPO / "Makefile") -> str:
    """What the recorded demos took (the minutes each record holds) and their sum: ``make reproduce``'s time on
    the machine that made them, short of the Makefile's demos that have no record yet (named)."""
    lines = ["", "## Time", "", "| record | command | commit | minutes |", "|---|---|---|---:|"]
    total, scripts = 0.0, set()
    for path in sorted(demos.glob("*.json")):
        record = json.loads(path.read_text())
        minutes, command = record.get("minutes"), record.get("command", "?")
        total += minutes or 0.0
        scripts |= set(re.findall(r"scripts/demo_\w+\.py", command))
        shown = "—" if minutes is None else f"{minutes:.1f}"
        lines.append(f"| `{path.name}` | `{command}` | {record.get('commit', '?')} | {shown} |")
    lines += [
        "",
        f"The recorded demos together: {total:.0f} min ({total / 60:.1f} h) on the machine that ran them. Each "
        "record holds the minutes of the run that wrote it, and a demo reuses the runs an earlier, stopped "
        "one finished, so a fresh `make reproduce` takes at least this.",
    ]
    missing = [target for target, used in reproduce_targets(makefile).items() if not used <= scripts]
    if missing:
        lines.append("No record yet, so not in that sum: " + ", ".join(f"`make {t}`" for t in missing) + ".")
    return "\n".join(lines) + "\n"


def reproduce_targets(makefile: Path) -> dict[str, set[str]]:
    """The demo targets ``make reproduce`` runs (its ``DEMOS``), each with the demo scripts its recipe calls."""
    text = makefile.read_text()
    found = re.search(r"^DEMOS :=(.*)$", text, re.MULTILINE)
    targets = found.group(1).split() if found else []
    recipes = {}
    for target in targets:
        recipe = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)*)", text, re.MULTILINE)
        recipes[target] = set(re.findall(r"scripts/demo_\w+\.py", recipe.group(1) if recipe else ""))
    return recipes


def _pairs(claim: Claim) -> str:
    joined = "; ".join(f"{t} vs {c}" for t, c in claim.pairs)
    return joined + (f" ({claim.require} of them)" if len(claim.pairs) > 1 else "")


def _criterion(claim: Claim) -> str:
    if claim.better == "equal":
        how = f"within {claim.margin:g}"
    elif claim.better == "at least":
        how = "at least as high" + (f", within {claim.margin:g}" if claim.margin else "")
    else:
        how = claim.better + (f" by more than {claim.margin:g}" if claim.margin else "")
    return f"{claim.metric}: {how}, in {claim.wins} of seeds {', '.join(map(str, claim.seeds))}"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--claims", type=Path, default=CLAIMS)
    parser.add_argument("--demos", type=Path, default=REPO / "benchmarks" / "demos")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "claims.md")
    args = parser.parse_args(argv)
    claims = load_claims(args.claims)
    markdown = board(claims, recorded_values(args.demos)) + time_section(args.demos)
    args.out.write_text(markdown)
    print(markdown)
    return markdown


if __name__ == "__main__":
    main()
