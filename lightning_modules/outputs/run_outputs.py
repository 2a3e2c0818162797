"""Where a run writes its files and how its pictures and texts reach the loggers, for modules and callbacks alike.

A run folder is the logger's version folder (``runs/<config>/version_<n>/``), or the trainer's
``default_root_dir`` when no logger is configured. Pictures go to every configured logger that can show images
(TensorBoard's ``add_image``, or a logger with a ``log_image(key, images, step)`` method such as Weights &
Biases); a logger that cannot (CSV) is skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def run_dir(trainer: Any) -> Path:
    """The run folder: where result tables, predictions and exported files are written."""
    return Path(trainer.log_dir or trainer.default_root_dir)


def next_predictions(folder: Path, stem: str = "predictions") -> Path:
    """The first ``<stem>.csv``, ``<stem>_2.csv``, ... in ``folder`` whose CSV and picture folder are both free:
    every ``predict`` into a run folder keeps what the earlier ones wrote."""
    number = 1
    while True:
        name = stem if number == 1 else f"{stem}_{number}"
        if not (folder / f"{name}.csv").exists() and not (folder / name).exists():
            return folder / f"{name}.csv"
        number += 1


def picture_name(path: str | Path, base: str | Path | None) -> Path:
    """Where the picture drawn for input ``path`` goes, inside a predict's picture folder: its path relative to
    ``base`` (the folder predicted on), the original name kept whole and ``.png`` added, so ``a.jpg`` and ``a.png``
    or ``x/a.png`` and ``y/a.png`` never share a picture."""
    path = Path(path)
    try:
        relative = path.resolve().relative_to(Path(base).resolve()) if base else Path(*path.parts[-2:])
    except ValueError:  # not under base (a test split elsewhere): its last two parts, as before
        relative = Path(*path.parts[-2:])
    return relative.with_name(relative.name + ".png")


def log_image(trainer: Any, tag: str, image: torch.Tensor, step: int | None = None) -> None:
    """Log one (3, H, W) picture in [0, 1] to every image-capable logger of ``trainer``."""
    step = trainer.global_step if step is None else step
    picture = image.detach().float().clamp(0, 1).cpu()
    for logger in trainer.loggers:
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "add_image"):  # TensorBoard
            experiment.add_image(tag, picture, global_step=step)
        elif callable(getattr(logger, "log_image", None)):  # Weights & Biases and alike: HWC arrays
            logger.log_image(key=tag, images=[picture.permute(1, 2, 0).numpy()], step=step)


def log_text(trainer: Any, tag: str, text: str, step: int | None = None) -> None:
    """Log a text (topic lists, prompts) to every logger that can show text."""
    step = trainer.global_step if step is None else step
    for logger in trainer.loggers:
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "add_text"):
            experiment.add_text(tag, text, step)
        elif callable(getattr(logger, "log_text", None)):
            logger.log_text(key=tag, columns=["text"], data=[[text]], step=step)
