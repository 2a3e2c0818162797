"""The loggers of a run, all writing into its one folder ``<runs_dir>/<run_name>/<version>``.

With no logger configured (or ``true``) it is TensorBoard. A config may name others — ``configs/env/csv.yaml``
(TensorBoard + CSV), ``configs/env/wandb.yaml`` (TensorBoard + Weights & Biases, offline: set ``offline: false``
to sync) —
by class alone: the run folder is filled in (``name`` and ``version`` where the config left them; ``save_dir``
always, since ``--runs_dir`` is where this CLI keeps runs — the overlays' ``save_dir: runs`` is only there because
the classes require one; for W&B its files go inside the run folder), and when there are several, they share
one version number, so the TensorBoard events, ``metrics.csv`` and the W&B run sit beside the checkpoints and
result tables.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

from jsonargparse import Namespace

TENSORBOARD = "lightning.pytorch.loggers.TensorBoardLogger"


def next_version(run_folder: Path) -> str:
    """``version_<n>``, one past the highest existing (``version_0`` in a new run folder)."""
    numbers = [
        int(m.group(1)) for p in run_folder.glob("version_*") if (m := re.fullmatch(r"version_(\d+)", p.name))
    ]
    return f"version_{max(numbers) + 1 if numbers else 0}"


def run_loggers(configured: Any, runs_dir: Path, run_name: str, version: str | None) -> Any:
    """The trainer's ``logger`` value with the run folder filled in (``False`` stays off)."""
    if configured is False:
        return False
    if configured in (None, True):
        return Namespace(
            class_path=TENSORBOARD,
            init_args=Namespace(
                save_dir=str(runs_dir), name=run_name, version=version, default_hp_metric=False
            ),
        )
    entries = list(configured) if isinstance(configured, list) else [configured]
    if len(entries) > 1 and version is None:  # one folder for all, chosen before any of them creates one
        version = next_version(runs_dir / run_name)
    for entry in entries:
        if not isinstance(entry, Namespace) or "class_path" not in entry:
            continue  # an instance built elsewhere: left as it is
        init = entry.get("init_args") or Namespace()
        defaults = _defaults(entry.class_path)
        for key, value in _run_folder_arguments(entry.class_path, runs_dir, run_name, version).items():
            if key == "save_dir" or init.get(key) is None or init.get(key) == defaults.get(key):
                init[key] = value
        entry.init_args = init
    return entries if isinstance(configured, list) else entries[0]


def drop_empty_event_files(trainer: Any) -> list[Path]:
    """Close the trainer's TensorBoard writers and delete the event files that hold nothing but their header (a
    predict logs no scalar or picture, yet a writer opened for it leaves such a file in the run folder, one per
    call); returns the files deleted."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    dropped = []
    for logger in getattr(trainer, "loggers", []):
        writer = getattr(logger, "_experiment", None)
        if writer is None or not hasattr(writer, "get_logdir"):
            continue
        writer.close()
        for file in Path(writer.get_logdir()).glob("events.out.tfevents.*"):
            try:
                events = list(EventFileLoader(str(file)).Load())
            except Exception:  # a file another process is writing: leave it
                continue
            if all(event.WhichOneof("what") == "file_version" for event in events):
                file.unlink()
                dropped.append(file)
    return dropped


def _defaults(class_path: str) -> dict[str, Any]:
    module, name = class_path.rsplit(".", 1)
    parameters = inspect.signature(getattr(importlib.import_module(module), name).__init__).parameters
    return {k: p.default for k, p in parameters.items() if p.default is not inspect.Parameter.empty}


def _run_folder_arguments(
    class_path: str, runs_dir: Path, run_name: str, version: str | None
) -> dict[str, Any]:
    name = class_path.rsplit(".", 1)[1]
    if name == "WandbLogger":  # its save_dir holds the wandb/ folder; its version would be the run id
        folder = runs_dir / run_name / (version or "version_0")
        folder.mkdir(parents=True, exist_ok=True)
        return {"save_dir": str(folder), "name": f"{run_name}/{version or 'version_0'}"}
    wanted = {"save_dir": str(runs_dir), "name": run_name, "version": version}
    if name == "TensorBoardLogger":
        wanted["default_hp_metric"] = False
    return {k: v for k, v in wanted.items() if v is not None}
