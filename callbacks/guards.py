"""Stop a run the moment its training loss stops being a number, saying where and on which files."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


class NonFiniteLossGuard(Callback):
    """Raise :class:`NonFiniteLossError` naming the step, the batch index and the batch's files when the training
    loss is NaN or infinite, instead of letting the run go on training (and checkpointing) garbage.

    Reads the loss ``training_step`` returned, or, for manual optimization (which returns nothing), the
    ``train/loss`` value the step logged. On by default in ``cli.py``.
    """

    def __init__(self, key: str = "train/loss", max_paths: int = 8) -> None:
        self.key = key
        self.max_paths = max_paths

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor):
            loss = trainer.callback_metrics.get(self.key)
        if not isinstance(loss, torch.Tensor) or bool(torch.isfinite(loss.detach()).all()):
            return
        value = float(loss.detach().float().flatten()[0])
        paths = list(batch.get("path", [])) if isinstance(batch, dict) else []
        shown = ", ".join(str(p) for p in paths[: self.max_paths]) + (
            " ..." if len(paths) > self.max_paths else ""
        )
        raise NonFiniteLossError(
            f"training loss is {'NaN' if math.isnan(value) else value} at iteration "
            f"{trainer.fit_loop.epoch_loop.total_batch_idx} (epoch {trainer.current_epoch}, batch {batch_idx}; "
            f"counted from 0); batch files: {shown or 'unknown'}; "
            "lower the learning rate, add warm-up or gradient clipping, or check these inputs"
        )
