"""scripts/score_topics.py gives an outside topics file the scores our models get: our own LDA run's topics.txt,
rescored, matches its results.csv; words the texts lack are dropped and named."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lightning_modules.outputs.tables import read_result_table
from tests.conftest import CONFIGS, REPO, smoke_argv

sys.path.insert(0, str(REPO / "scripts"))

import score_topics  # noqa: E402


def test_a_run_s_own_topics_rescore_to_its_results(
    run_cli, standin_root: Path, tmp_path: Path, capsys
) -> None:
    config = ["--config", str(CONFIGS / "lda_20ng.yaml"), "--model.init_args.num_topics", "4"]
    run_cli("fit", *config)
    test = run_cli("test", *config, "--ckpt_path", "last")
    run_dir = Path(test.trainer.log_dir)
    recorded = read_result_table(run_dir / "results.csv")[0]
    data_args = smoke_argv(["--config", str(CONFIGS / "lda_20ng.yaml")], standin_root, tmp_path / "runs")
    scores = score_topics.main([str(run_dir / "topics.txt"), *data_args])
    for metric in ("npmi", "td", "tq", "npmi_50", "td_50"):
        assert float(scores[metric]) == pytest.approx(float(recorded[metric]), abs=1e-4), metric
    foreign = tmp_path / "bertopic.txt"
    words = (run_dir / "topics.txt").read_text().splitlines()[1].split()[4:]
    foreign.write_text("# exported elsewhere\n" + " ".join(["zzzunknownword", *words]) + "\n")
    score_topics.main([str(foreign), *data_args])
    assert "Not in the texts, dropped: zzzunknownword" in capsys.readouterr().out
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing but a comment\n")
    with pytest.raises(ValueError, match="no topic lines"):
        score_topics.read_topics(empty)
