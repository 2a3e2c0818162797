"""scripts/check_claims.py on hand-made demo records: a claim that holds, one that does not, one never run, and
one that cannot run yet (with its reason)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))

import check_claims  # noqa: E402

CLAIMS = """claims:
  - {id: holds, paper: P1, claim: mixing helps, demo: make demo-a, metric: err, better: lower,
     pairs: [[mixed, plain]], seeds: [0, 1, 2], wins: 3, blind: true, regime: as the paper}
  - {id: fails, paper: P2, claim: links help, demo: make demo-b, metric: acc, better: higher, margin: 1.0,
     pairs: [[links, plain]], seeds: [0, 1, 2], wins: 3, blind: "no: a table was seen", regime: imagenet}
  - {id: absent, paper: P3, claim: never measured, demo: make demo-c, metric: auc, better: higher,
     pairs: [[x, y]], seeds: [0, 1, 2], wins: 2, blind: true, regime: random init}
  - {id: waits, paper: P4, claim: generation helps, demo: make demo-d, metric: auc, better: higher,
     pairs: [[x, y]], seeds: [0, 1, 2], wins: 3, blocked: the generator collapses, blind: true,
     regime: random init}
  - {id: identity, paper: P1, claim: scaling keeps accuracy, demo: make demo-a, metric: acc, better: equal,
     pairs: [[mixed, plain]], seeds: [0, 1, 2], wins: 3, blind: true, regime: as the paper,
     sanity: dividing by a positive number keeps the argmax}
  - {id: same_runs, paper: P1, claim: plain beats mixed, demo: make demo-a, metric: err, better: lower,
     pairs: [[plain, mixed]], seeds: [0, 1, 2], wins: 3, blind: "no: added after reading", regime: as the paper,
     values_of: holds}
"""


def test_the_board_judges_recorded_values_and_marks_what_was_not_run(tmp_path: Path) -> None:
    (tmp_path / "claims.yaml").write_text(CLAIMS)
    demos = tmp_path / "demos"
    demos.mkdir()
    record = {"commit": "abc1234", "date": "2026-12-01"}
    values = {"mixed": {"0": 9.0, "1": 9.2, "2": 9.9}, "plain": {"0": 10.0, "1": 10.0, "2": 10.0}}
    same = {"mixed": {"0": 9.0, "1": 9.0, "2": 9.0}, "plain": {"0": 9.0, "1": 9.0, "2": 9.0}}
    (demos / "demo_a.json").write_text(json.dumps({**record, "claims": {"holds": values, "identity": same}}))
    values = {"links": {"0": 80.5, "1": 82.0, "2": 81.5}, "plain": {"0": 80.0, "1": 80.0, "2": 80.0}}
    dirty = {**record, "commit": "abc1234+changes"}
    (demos / "demo_b.json").write_text(json.dumps({**dirty, "claims": {"fails": values}}))
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
    assert "not run: the generator collapses |" in rows["generation helps"]
    # blindness, regime and provenance are columns; a record made from uncommitted code says so
    assert "| as the paper | mixed vs plain |" in rows["mixing helps"] and "| yes |" in rows["mixing helps"]
    assert "| imagenet |" in rows["links help"] and "| no: a table was seen |" in rows["links help"]
    assert "(abc1234+changes, 2026-12-01), uncommitted code |" in rows["links help"]
    # a row judged on another claim's runs; an identity shown apart and not counted in the summary
    assert "10.00 ± 0.00 vs 9.37 ± 0.47, 0 / 3 seeds | **does not hold**" in rows["plain beats mixed"]
    assert "sanity check: dividing by a positive number keeps the argmax" in rows["scaling keeps accuracy"]
    summary = next(line for line in board.splitlines() if line.startswith("**"))
    assert summary.startswith(
        "**5 claims that could have failed: 1 hold, 2 do not hold, 2 not run** (3 of them"
    )
    assert board.index("## Shown, not counted") < board.index("| scaling keeps accuracy")


def test_the_time_section_sums_the_records_and_names_the_demos_without_one(tmp_path: Path) -> None:
    demos = tmp_path / "demos"
    demos.mkdir()
    for name, minutes in (("demo_a", 12.5), ("demo_b", 30.0)):
        record = {"command": f"python scripts/{name}.py --readme", "commit": "abc1234", "minutes": minutes}
        (demos / f"{name}.json").write_text(json.dumps(record))
    makefile = tmp_path / "Makefile"
    makefile.write_text(
        "demo-a: x  ## a\n\tcd . && $(PY) scripts/demo_a.py --readme\n\n"
        "demo-b: x\n\t$(PY) scripts/demo_b.py --readme\n\n"
        "demo-c: x\n\t$(PY) scripts/demo_c.py --readme\n\t$(PY) scripts/demo_a.py\n\n"
        "DEMOS := demo-a demo-b demo-c\n"
    )
    section = check_claims.time_section(demos, makefile)
    assert "| `demo_a.json` | `python scripts/demo_a.py --readme` | abc1234 | 12.5 |" in section
    assert "The recorded demos together: 42 min (0.7 h)" in section
    assert "No record yet, so not in that sum: `make demo-c`." in section


def test_every_demo_make_reproduce_runs_writes_its_evidence_into_a_readme_block() -> None:
    """Each recipe line of a ``make reproduce`` demo passes ``--readme``, and the README its script writes into
    holds that script's ``<!-- demo:... -->`` markers, so no method README carries a hand copy of a demo table."""
    targets = check_claims.reproduce_targets(REPO / "Makefile")
    assert len(targets) >= 10 and all(targets.values()), targets
    makefile = (REPO / "Makefile").read_text()
    for line in makefile.splitlines():
        if line.startswith("\t") and "scripts/demo_" in line:
            assert "--readme" in line, f"Makefile: {line.strip()!r} does not pass --readme"
    for script in set().union(*targets.values()):
        source = (REPO / script).read_text()
        readme = re.search(r'^README = "([^"]+)"', source, re.MULTILINE)
        assert readme, f"{script} names no README"
        names = re.findall(r'write_report\(.*?"(demo_[a-z_]+?)(?:_\{\w+\.\w+\})?"', source, re.DOTALL)
        assert names, f"{script} calls no write_report with a demo name"
        text = (REPO / readme.group(1)).read_text()
        for name in names:  # an f-string name (demo_tvqvae_{args.dataset}) checks its fixed prefix
            assert f"<!-- demo:{name}" in text, (
                f"{readme.group(1)} has no <!-- demo:{name} --> block for {script}"
            )
