"""scripts/check_claims.py on hand-made demo records: a claim that holds, one that does not, one never run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))

import check_claims  # noqa: E402

CLAIMS = """claims:
  - {id: holds, paper: P1, claim: mixing helps, demo: make demo-a, metric: err, better: lower,
     pairs: [[mixed, plain]], seeds: [0, 1, 2], wins: 3}
  - {id: fails, paper: P2, claim: links help, demo: make demo-b, metric: acc, better: higher, margin: 1.0,
     pairs: [[links, plain]], seeds: [0, 1, 2], wins: 3}
  - {id: absent, paper: P3, claim: never measured, demo: make demo-c, metric: auc, better: higher,
     pairs: [[x, y]], seeds: [0, 1, 2], wins: 2}
"""


def test_the_board_judges_recorded_values_and_marks_what_was_not_run(tmp_path: Path) -> None:
    (tmp_path / "claims.yaml").write_text(CLAIMS)
    demos = tmp_path / "demos"
    demos.mkdir()
    record = {"commit": "abc1234", "date": "2026-12-01"}
    values = {"mixed": {"0": 9.0, "1": 9.2, "2": 9.9}, "plain": {"0": 10.0, "1": 10.0, "2": 10.0}}
    (demos / "demo_a.json").write_text(json.dumps({**record, "claims": {"holds": values}}))
    values = {"links": {"0": 80.5, "1": 82.0, "2": 81.5}, "plain": {"0": 80.0, "1": 80.0, "2": 80.0}}
    (demos / "demo_b.json").write_text(json.dumps({**record, "claims": {"fails": values}}))
    out = tmp_path / "claims.md"
    board = check_claims.main(
        ["--claims", str(tmp_path / "claims.yaml"), "--demos", str(demos), "--out", str(out)]
    )
    assert out.read_text() == board
    rows = {line.split(" | ")[0].lstrip("| "): line for line in board.splitlines() if line.startswith("| ")}
    assert (
        "**holds**" in rows["mixing helps"]
        and "9.37 ± 0.47 vs 10.00 ± 0.00, 3 / 3 seeds" in rows["mixing helps"]
    )
    assert "`demo_a.json` (abc1234, 2026-12-01)" in rows["mixing helps"]
    assert (
        "**does not hold**" in rows["links help"] and "2 / 3 seeds" in rows["links help"]
    )  # 80.5 is within 1
    assert "acc: higher by more than 1, in 3 of seeds 0, 1, 2" in rows["links help"]
    assert "not run (`make demo-c` records it)" in rows["never measured"]
