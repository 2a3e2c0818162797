"""PatchCore and Reverse Distillation as LightningModules; evaluation is the shared anomaly routine."""

from __future__ import annotations

import logging
from typing import Any

import torch

from datamodules.base import batch_size_of
from lightning_modules.anomaly.patchcore import PatchCoreNet
from lightning_modules.anomaly.reverse_distillation import (
    DistillationLoss,
    ReverseDistillationNet,
    distillation_loss,
)
from lightning_modules.anomaly.routine import AnomalyDetectionRoutine

log = logging.getLogger(__name__)


class PatchCoreModule(AnomalyDetectionRoutine):
    """PatchCore: one pass over the normal training images fills the memory bank (no gradient step); the
    coreset is chosen when the epoch's images are all seen, before validation. Run it for one epoch.

    Args:
        backbone: timm CNN (ResNet-18 as the TGI paper's baseline; Wide-ResNet-50-2 in the PatchCore paper).
        layers: timm feature indices aggregated (ResNets: 2, 3 = layer2, layer3).
        pretrained: ImageNet weights (needed for the paper's numbers; offline, pass ``pretrained_path``).
        pretrained_path: Local weight file or a checkpoint trained here.
        neighbourhood: Local aggregation window (3 x 3 average pooling).
        coreset_ratio: Share of training patches kept (0.1 as anomalib's default; 0.01 in the paper for full
            MVTec, where banks are ten times larger).
        projection_dim: Random projection for the coreset's distances (null: none).
        num_neighbors: Bank neighbourhood of the image-score re-weighting (1: none).
        blur_sigma: Gaussian smoothing of the anomaly map in pixels (4 at 224 px in the paper).
        max_elements: Largest distance matrix in the nearest-neighbour search (bounds memory).
        seed: Seed of the coreset's start and projection.
        pro_fpr_limit: Upper FPR of AUPRO.
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        layers: tuple[int, ...] = (2, 3),
        pretrained: bool = True,
        pretrained_path: str | None = None,
        neighbourhood: int = 3,
        coreset_ratio: float = 0.1,
        projection_dim: int | None = 128,
        num_neighbors: int = 9,
        blur_sigma: float = 4.0,
        max_elements: int = 1 << 24,
        seed: int = 0,
        pro_fpr_limit: float = 0.3,
    ) -> None:
        super().__init__(pro_fpr_limit)
        self.save_hyperparameters()
        if not 0 < coreset_ratio <= 1:
            raise ValueError(f"model.init_args.coreset_ratio must be in (0, 1], got {coreset_ratio}")
        self.net = PatchCoreNet(backbone, layers, pretrained, pretrained_path, neighbourhood, coreset_ratio,
                                projection_dim, num_neighbors, blur_sigma, max_elements)  # fmt: skip
        self._embeddings: list[torch.Tensor] = []

    def configure_optimizers(self) -> None:
        return None  # nothing is trained

    def on_train_epoch_start(self) -> None:
        self._embeddings = []

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if batch_size_of(batch):
            with torch.no_grad():
                embedding = self.net.embed(batch["image"]).float()
            self._embeddings.append(embedding.reshape(-1, embedding.shape[-1]))

    def on_validation_start(self) -> None:
        self._build_memory_bank()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if self.trainer.sanity_checking and not len(self.net.memory_bank):
            return  # Lightning's sanity check runs before the first training image is seen
        super().validation_step(batch, batch_idx)

    def on_train_epoch_end(self) -> None:
        self._build_memory_bank()

    def _build_memory_bank(self) -> None:
        if not self._embeddings:
            return
        embeddings = torch.cat(self._embeddings)
        self._embeddings = []
        if self.trainer.world_size > 1:  # every rank saw its share of the images: one bank from all of them
            embeddings = self.all_gather(embeddings).reshape(-1, embeddings.shape[-1])
        self.net.fit(embeddings, seed=self.hparams.seed)
        log.info("PatchCore memory bank: %d of %d patches (coreset ratio %g)", len(self.net.memory_bank),
                 len(embeddings), self.hparams.coreset_ratio)  # fmt: skip
        self.log("train/memory_bank_size", float(len(self.net.memory_bank)))

    def anomaly_map(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(batch["image"])


class ReverseDistillationModule(AnomalyDetectionRoutine):
    """Reverse Distillation: the bottleneck and student learn to rebuild the frozen teacher's features of
    normal images (Adam, lr 0.005, betas (0.5, 0.999), 200 epochs, batch 16 in the paper).

    Args:
        backbone: Teacher (Wide-ResNet-50-2 in the paper and METHODS.md).
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
        self.net = ReverseDistillationNet(backbone, layers, pretrained, pretrained_path, bottleneck_blocks,
                                          decoder_blocks, blur_sigma)  # fmt: skip

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        if not batch_size_of(batch):
            return None
        teacher, student = self.net(batch["image"])
        loss = distillation_loss(teacher, student, self.hparams.loss)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size_of(batch))
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        trainable = [p for p in self.net.parameters() if p.requires_grad]
        return torch.optim.Adam(trainable, lr=self.hparams.lr, betas=tuple(self.hparams.betas),
                                weight_decay=self.hparams.weight_decay)  # fmt: skip

    def anomaly_map(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.anomaly_map(batch["image"])
