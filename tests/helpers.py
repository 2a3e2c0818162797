"""Helpers shared by tests: reading TensorBoard events back, running ``cli.py`` in a real subprocess, and a
callback that slows training down and reports its progress so a test can interrupt it at a known point."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from lightning.pytorch.callbacks import Callback
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

REPO = Path(__file__).resolve().parents[1]
# set by launchers (torchrun, Lightning, SLURM); a child inheriting them would wait for ranks that never come
DISTRIBUTED_VARIABLES = {
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "NODE_RANK",
    "GROUP_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
    "LOCAL_WORLD_SIZE",
    "PL_GLOBAL_SEED",
}


def decode(image_event: Any) -> np.ndarray:
    """A TensorBoard image event's picture as an (H, W, 3) uint8 array."""
    return np.asarray(Image.open(io.BytesIO(image_event.encoded_image_string)).convert("RGB"))


def read_events(run_dir: Path) -> EventAccumulator:
    """The first TensorBoard event file of a run folder, fully loaded."""
    files = sorted(run_dir.glob("events.out.tfevents.*"))
    assert files, f"no event file in {run_dir}"
    events = EventAccumulator(str(files[0]), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    return events


def last_scalars(run_dir: Path, *tags: str) -> dict[str, float]:
    """The last value of each tag over every event file of a run folder (a resumed run appends a new file)."""
    values: dict[str, tuple[int, float]] = {}
    for file in sorted(run_dir.glob("events.out.tfevents.*")):
        events = EventAccumulator(str(file), size_guidance={"scalars": 0})
        events.Reload()
        for tag in tags:
            if tag in events.Tags()["scalars"]:
                event = events.Scalars(tag)[-1]
                if tag not in values or event.step >= values[tag][0]:
                    values[tag] = (event.step, event.value)
    missing = set(tags) - set(values)
    assert not missing, f"{sorted(missing)} not logged under {run_dir}"
    return {tag: value for tag, (_, value) in values.items()}


def quiet_trainer(**options: Any) -> L.Trainer:
    """A CPU Trainer that writes and prints nothing (no logger, checkpoint, progress bar or model summary) unless
    ``options`` say otherwise; every other option as given."""
    quiet = {
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    return L.Trainer(**(quiet | options))


def predictions_file(cli: Any) -> Path:
    """The CSV a ``predict`` run wrote (``predictions.csv``, or ``predictions_<n>.csv`` in a folder predicted on
    before), from its prediction writer."""
    writers = [c for c in cli.trainer.callbacks if isinstance(getattr(c, "target", None), Path)]
    assert writers, "no prediction writer in this run"
    return writers[0].target


def cli_command(*args: str) -> list[str]:
    return [sys.executable, str(REPO / "cli.py"), *args]


def cli_env(**extra: str) -> dict[str, str]:
    """The test process's environment, offline, with the repository importable, plus ``extra``."""
    env = {
        k: v for k, v in os.environ.items() if k not in DISTRIBUTED_VARIABLES and not k.startswith("SLURM_")
    }
    env |= {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "RVL_TRACEBACK": "1"}
    env.update(extra)
    return env


def run_cli_subprocess(*args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    """``python cli.py ARGS`` to completion; fails the test with the command's output if it fails."""
    result = subprocess.run(
        cli_command(*args), env=cli_env(**env), cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, (
        f"cli.py {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    )
    return result


def wait_for_line(path: Path, prefix: str, process: subprocess.Popen, timeout: float = 300) -> None:
    """Block until ``path`` has a line starting with ``prefix`` (written by :class:`SlowTraining`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and any(line.startswith(prefix) for line in path.read_text().splitlines()):
            return
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(
                f"the run ended before {prefix!r} (rc {process.returncode}):\n{out[-3000:]}\n{err[-6000:]}"
            )
        time.sleep(0.05)
    raise AssertionError(f"no {prefix!r} in {path} after {timeout} s")


class SlowTraining(Callback):
    """Sleep after every training batch and append ``epoch <e> batch <b>`` to ``progress_file``.

    Used only by tests that interrupt a run: the sleep gives them time to act at a known point, the file says
    when. Sleeping draws no random numbers, so a slowed run trains exactly as a normal one.
    """

    def __init__(self, progress_file: str, seconds: float = 0.0) -> None:
        self.progress_file = Path(progress_file)
        self.seconds = seconds

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        with open(self.progress_file, "a") as handle:
            handle.write(f"epoch {trainer.current_epoch} batch {batch_idx}\n")
        time.sleep(self.seconds)
