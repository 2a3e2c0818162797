"""Mistakes on the command line end in one clear line, not a traceback (a real subprocess as a user runs it, and its
entry point in this process, which costs no second start of torch)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import CONFIGS, REPO


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "cli.py"), *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_missing_dataset_is_one_line_naming_the_root_and_the_fix(tmp_path: Path) -> None:
    result = run(
        "fit",
        "--config",
        str(CONFIGS / "bihpf.yaml"),
        "--data.init_args.root",
        str(tmp_path / "nope"),
        "--model.init_args.pretrained",
        "false",
        "--trainer.accelerator",
        "cpu",
        "--runs_dir",
        str(tmp_path / "runs"),
        cwd=tmp_path,
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: DatasetNotFoundError: CNNDetection data not found at data.init_args.root=")
    assert str(tmp_path / "nope") in last and "synthetic true" in last
    assert "Traceback" not in result.stderr


def test_a_nan_loss_stops_the_run_naming_the_step_and_the_files(run_cli, monkeypatch) -> None:
    import pytest

    from callbacks.guards import NonFiniteLossError
    from lightning_modules.bihpf.module import BiHPFModule

    original = BiHPFModule.loss
    monkeypatch.setattr(
        BiHPFModule, "loss", lambda self, logits, batch: original(self, logits, batch) * float("nan")
    )
    with pytest.raises(
        NonFiniteLossError,
        match=r"training loss is NaN at iteration 0 \(epoch 0, batch 0; counted from 0\); batch files: .*\.png",
    ):
        run_cli("fit", "--config", str(CONFIGS / "bihpf.yaml"))


def test_manual_optimization_losses_are_guarded_too(run_cli, monkeypatch) -> None:
    import pytest

    from callbacks.guards import NonFiniteLossError
    from lightning_modules.frepgan.module import FrePGANModule

    original = FrePGANModule.loss
    monkeypatch.setattr(
        FrePGANModule, "loss", lambda self, logits, batch: original(self, logits, batch) + float("inf")
    )
    with pytest.raises(NonFiniteLossError, match="training loss is inf"):
        run_cli("fit", "--config", str(CONFIGS / "frepgan.yaml"))


def test_offline_hub_weights_are_one_line_naming_the_backbone_and_both_ways_out(
    tmp_path: Path, standin_root: Path, monkeypatch, capsys
) -> None:
    """In this process, through the shell's entry point (the missing-dataset test above runs a real one)."""
    import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RVL_TRACEBACK", raising=False)
    argv = ["fit", "--config", str(CONFIGS / "bihpf.yaml"), "--config", str(CONFIGS / "smoke.yaml")]
    assert cli.run_from_command_line([*argv, "--data.init_args.root", str(standin_root)]) == 1
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: BackboneWeightsError: no pretrained weights for backbone 'resnet50'"), last
    assert "--model.init_args.pretrained false" in last and "--model.init_args.pretrained_path" in last
    assert "--imagenet lite0" in last  # the offline choice with real ImageNet weights
