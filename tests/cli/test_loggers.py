"""Loggers beside TensorBoard (configs/env/csv.yaml, configs/env/wandb.yaml) write into the run folder and are read
back; the installed `rvl` command is the CLI."""

from __future__ import annotations

import csv
import importlib.metadata
import os
import subprocess
import sys
import time
from pathlib import Path

from lightning_modules.outputs.loggers import next_version, run_loggers
from tests.conftest import CONFIGS, REPO
from tests.helpers import read_events

METHOD = str(CONFIGS / "cnndetection.yaml")


def test_csv_overlay_writes_metrics_csv_beside_the_tensorboard_events(run_cli) -> None:
    fit = run_cli("fit", "--config", METHOD, "--config", str(CONFIGS / "env" / "csv.yaml"))
    run_dir = Path(fit.trainer.log_dir)
    assert run_dir.name == "version_0" and (run_dir / "checkpoints" / "last.ckpt").is_file()
    with open(run_dir / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert any(r.get("train/loss") for r in rows) and any(r.get("val/acc") for r in rows)
    assert "train/loss" in read_events(run_dir).Tags()["scalars"]  # TensorBoard in the same folder
    again = run_cli("fit", "--config", METHOD, "--config", str(CONFIGS / "env" / "csv.yaml"))
    assert Path(again.trainer.log_dir).name == "version_1"  # both loggers moved on together


def test_wandb_overlay_runs_offline_into_the_run_folder(run_cli, monkeypatch) -> None:
    import wandb  # make install installs the loggers extra: a missing one fails here, never skips

    monkeypatch.setenv("WANDB_SILENT", "true")
    fit = run_cli("fit", "--config", METHOD, "--config", str(CONFIGS / "env" / "wandb.yaml"))
    run_dir = Path(fit.trainer.log_dir)
    offline = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert offline, f"no offline W&B run under {run_dir}"
    assert list(offline[-1].glob("files/media/images/pictures/*.png"))  # the pictures went to W&B too
    wandb.finish()
    log = next(offline[-1].glob("run-*.wandb"))  # the run's record log, which `wandb sync` uploads
    # W&B's service process writes the log after finish() returns; on a loaded machine (two test workers)
    # that takes a moment, so wait for it (bounded) before reading
    deadline = time.monotonic() + 60
    while b"val/acc" not in log.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert b"train/loss" in log.read_bytes() and b"val/acc" in log.read_bytes()
    assert "train/loss" in read_events(run_dir).Tags()["scalars"]


def test_the_run_folder_is_filled_in_only_where_the_config_left_it(tmp_path: Path) -> None:
    from jsonargparse import Namespace

    assert next_version(tmp_path / "new") == "version_0"
    (tmp_path / "run" / "version_4").mkdir(parents=True)
    assert next_version(tmp_path / "run") == "version_5"
    chosen = Namespace(class_path="lightning.pytorch.loggers.CSVLogger", init_args=Namespace(name="mine"))
    loggers = run_loggers(
        [Namespace(class_path="lightning.pytorch.loggers.TensorBoardLogger"), chosen], tmp_path, "run", None
    )
    assert [entry.init_args.get("version") for entry in loggers] == ["version_5", "version_5"]
    assert loggers[1].init_args.name == "mine" and loggers[0].init_args.name == "run"
    assert run_loggers(False, tmp_path, "run", None) is False


def test_the_installed_rvl_command_is_the_cli() -> None:
    rvl = Path(sys.executable).parent / "rvl"
    assert rvl.is_file(), "rvl is not installed: make install (pip install -e .) creates it"
    result = subprocess.run(
        [str(rvl), "fit", "--config", str(CONFIGS / "nonexistent.yaml")],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode != 0 and "nonexistent.yaml" in result.stderr.strip().splitlines()[-1]
    # the command is the shell's entry point of cli.py (a second process for --help would cost its ~6 s start)
    (entry,) = importlib.metadata.entry_points(group="console_scripts", name="rvl")
    assert entry.load() is __import__("cli").run_from_command_line
