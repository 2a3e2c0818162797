"""Pictures to the image loggers (TensorBoard, ...) from any module that can draw them."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from torchvision.utils import make_grid

from lightning_modules.outputs.run_outputs import log_image


class TensorBoardPictures(Callback):
    """Log ``pl_module.pictures(batch)`` for the first validation batch every ``every_n_epochs`` epochs.

    Needs a module method ``pictures(batch) -> dict[str, Tensor (N, C, H, W) in [0, 1]]``; each entry becomes
    one image grid under ``pictures/<name>``. Modules without it are left alone, so the callback can be on by
    default for every method; ``required=True`` makes a missing method an error instead.
    """

    def __init__(self, every_n_epochs: int = 1, max_images: int = 16, required: bool = False) -> None:
        self.every_n_epochs = every_n_epochs
        self.max_images = max_images
        self.required = required

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.required and not callable(getattr(pl_module, "pictures", None)):
            raise TypeError(
                f"TensorBoardPictures needs {type(pl_module).__name__}.pictures(batch); it has none"
            )

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch_idx != 0 or dataloader_idx != 0 or trainer.sanity_checking or not trainer.is_global_zero:
            return
        if trainer.current_epoch % self.every_n_epochs or not callable(getattr(pl_module, "pictures", None)):
            return
        if not trainer.loggers or not isinstance(batch, dict) or "image" not in batch:
            return
        for name, images in pl_module.pictures(batch).items():
            grid = make_grid(images[: self.max_images].detach().float().clamp(0, 1).cpu(), nrow=8, padding=2)
            log_image(trainer, f"pictures/{name}", grid)
