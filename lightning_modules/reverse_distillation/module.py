"""Reverse Distillation as a LightningModule: the bottleneck and student train; evaluation is the anomaly routine."""

from __future__ import annotations

from typing import Any

import torch

from datamodules.batch import batch_size_of
from lightning_modules.components.anomaly_output import AnomalyOutput
from lightning_modules.components.backbones import SMALL_BACKBONE_SMOKE
from lightning_modules.reverse_distillation.networks import (
    DistillationLoss,
    ReverseDistillationNet,
    distillation_loss,
)
from lightning_modules.routines.anomaly_detection import AnomalyDetectionRoutine


class ReverseDistillationModule(AnomalyDetectionRoutine):
    """Reverse Distillation: the bottleneck and student learn to rebuild the frozen teacher's features of
    normal images (Adam, lr 0.005, betas (0.5, 0.999), 200 epochs, batch 16 in the paper).

    Args:
        backbone: Teacher (Wide-ResNet-50-2 in the paper).
        layers: timm feature indices distilled (ResNets: 1, 2, 3).
        pretrained: ImageNet weights of the teacher.
        pretrained_path: Local weight file or a checkpoint trained here.
        bottleneck_blocks: Residual blocks of the one-class embedding.
        decoder_blocks: Residual blocks per student stage.
        loss: ``per_position`` cosine distance (the paper's eq. 2) or ``flattened`` (the official code).
        lr: Adam learning rate.
        betas: Adam betas.
        weight_decay: Adam weight decay (0 in the paper).
        blur_sigma: Gaussian smoothing of the anomaly map in pixels.
        pro_fpr_limit: Upper FPR of AUPRO.
    """

    SMOKE_ARGUMENTS = SMALL_BACKBONE_SMOKE

    def __init__(
        self,
        backbone: str = "wide_resnet50_2",
        layers: tuple[int, ...] = (1, 2, 3),
        pretrained: bool = True,
        pretrained_path: str | None = None,
        bottleneck_blocks: int = 1,
        decoder_blocks: int = 2,
        loss: DistillationLoss = "per_position",
        lr: float = 0.005,
        betas: tuple[float, float] = (0.5, 0.999),
        weight_decay: float = 0.0,
        blur_sigma: float = 4.0,
        pro_fpr_limit: float = 0.3,
    ) -> None:
        super().__init__(pro_fpr_limit)
        self.save_hyperparameters()
        distillation_loss([torch.ones(1, 1)], [torch.ones(1, 1)], loss)  # validates the name now
        self.net = ReverseDistillationNet(
            backbone, layers, pretrained, pretrained_path, bottleneck_blocks, decoder_blocks, blur_sigma
        )

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        if not batch_size_of(batch):
            return None
        teacher, student = self.net(batch["image"])
        loss = distillation_loss(teacher, student, self.hparams.loss)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size_of(batch))
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        trainable = [p for p in self.net.parameters() if p.requires_grad]
        return torch.optim.Adam(
            trainable,
            lr=self.hparams.lr,
            betas=tuple(self.hparams.betas),
            weight_decay=self.hparams.weight_decay,
        )

    def anomaly_map(self, batch: dict[str, Any]) -> AnomalyOutput:
        return self.net.anomaly_map(batch["image"])
