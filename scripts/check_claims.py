"""`make claims`: every claim of ``benchmarks/claims.yaml`` judged on what its demo recorded, as one board.

Each demo run with ``--readme`` records the values it judged each claim on in ``benchmarks/demos/<demo>.json``
(with its command, commit and date). This reads those files — it runs nothing — and writes
``benchmarks/claims.md``: per claim the paper, the claim, the criterion, the measured means, and "holds", "does not
hold" or "not run" (with the demo to run). The verdicts are recomputed here from the recorded values, so a
criterion changed in ``claims.yaml`` shows at once.

    python scripts/check_claims.py [--demos benchmarks/demos] [--out benchmarks/claims.md]
"""

from __future__ import annotations

import argparse
import json
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


def board(claims: dict[str, Claim], found: dict[str, tuple[dict, dict]]) -> str:
    lines = [
        "# The papers' claims, measured",
        "",
        "Written by `make claims` (`python scripts/check_claims.py`) from `benchmarks/claims.yaml` (each criterion "
        "written before its demo ran) and the values the demos recorded in `benchmarks/demos/*.json`.",
        "",
        "| claim | paper | compared | criterion | measured (treatment vs control, mean ± sd) | verdict | from |",
        "|---|---|---|---|---|---|---|",
    ]
    for claim in claims.values():
        if claim.id not in found:
            lines.append(
                f"| {claim.claim} | {claim.paper} | {_pairs(claim)} | {_criterion(claim)} | — | "
                f"not run (`{claim.demo}` records it) | — |"
            )
            continue
        values, record = found[claim.id]
        verdict = judge(claim, values)
        measured = "; ".join(verdict.measured)
        source = f"`{record['file']}` ({record.get('commit', '?')}, {record.get('date', '?')})"
        lines.append(
            f"| {claim.claim} | {claim.paper} | {_pairs(claim)} | {_criterion(claim)} | {measured} | "
            f"**{'holds' if verdict.holds else 'does not hold'}** | {source} |"
        )
    return "\n".join(lines) + "\n"


def _pairs(claim: Claim) -> str:
    joined = "; ".join(f"{t} vs {c}" for t, c in claim.pairs)
    return joined + (f" ({claim.require} of them)" if len(claim.pairs) > 1 else "")


def _criterion(claim: Claim) -> str:
    if claim.better == "equal":
        how = f"within {claim.margin:g}"
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
    markdown = board(load_claims(args.claims), recorded_values(args.demos))
    args.out.write_text(markdown)
    print(markdown)
    return markdown


if __name__ == "__main__":
    main()
