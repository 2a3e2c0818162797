"""PatchCore as a LightningModule: the training pass fills the memory bank; evaluation is the anomaly routine."""

from __future__ import annotations

import logging
from typing import Any

import torch

from datamodules.batch import batch_size_of
from lightning_modules.components.anomaly_output import AnomalyOutput
from lightning_modules.patchcore.networks import PatchCoreNet
from lightning_modules.routines.anomaly_detection import AnomalyDetectionRoutine
from lightning_modules.routines.fitted_state import FittedStateMixin

log = logging.getLogger(__name__)


class PatchCoreModule(FittedStateMixin, AnomalyDetectionRoutine):
    """PatchCore: one pass over the normal training images fills the memory bank (no gradient step); the
    coreset is chosen when the epoch's images are all seen, before validation. Run it for one epoch.

    Args:
        backbone: timm CNN (ResNet-18 as the TGI paper's baseline; Wide-ResNet-50-2 in the PatchCore paper).
        layers: timm feature indices aggregated (ResNets: 2, 3 = layer2, layer3).
        pretrained: ImageNet weights (needed for the paper's numbers; offline, pass ``pretrained_path``).
        pretrained_path: Local weight file or a checkpoint trained here.
        neighborhood: Local aggregation window (3 x 3 average pooling).
        coreset_ratio: Share of training patches kept (0.1 as anomalib's default; 0.01 in the paper for full
            MVTec, where banks are ten times larger).
        projection_dim: Random projection for the coreset's distances (null: none).
        num_neighbors: Bank neighborhood of the image-score re-weighting (1: none).
        blur_sigma: Gaussian smoothing of the anomaly map in pixels (4 at 224 px in the paper).
        max_elements: Largest distance matrix in the nearest-neighbor search (bounds memory).
        seed: Seed of the coreset's start and projection.
        pro_fpr_limit: Upper FPR of AUPRO.

    Example:
        >>> module = PatchCoreModule(pretrained=False, coreset_ratio=0.5)
        >>> module.net.memory_bank.shape[1]  # layer2 + layer3 channels of ResNet-18
        384
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        layers: tuple[int, ...] = (2, 3),
        pretrained: bool = True,
        pretrained_path: str | None = None,
        neighborhood: int = 3,
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
        self.net = PatchCoreNet(
            backbone,
            layers,
            pretrained,
            pretrained_path,
            neighborhood,
            coreset_ratio,
            projection_dim,
            num_neighbors,
            blur_sigma,
            max_elements,
        )
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

    def fit_to_training_data(self) -> None:
        """The coreset of every patch embedding this epoch has seen so far, from every rank, as the bank."""
        if not self._embeddings:
            return
        embeddings = torch.cat(self._embeddings)
        if self.trainer.world_size > 1:  # every rank saw its share of the images: one bank from all of them
            embeddings = self.all_gather(embeddings).reshape(-1, embeddings.shape[-1])
        self.net.fit(embeddings, seed=self.hparams.seed)
        log.info(
            "PatchCore memory bank: %d of %d patches (coreset ratio %g)",
            len(self.net.memory_bank),
            len(embeddings),
            self.hparams.coreset_ratio,
        )
        self.log("train/memory_bank_size", float(len(self.net.memory_bank)))

    def anomaly_map(self, batch: dict[str, Any]) -> AnomalyOutput:
        return self.net(batch["image"])

    def on_train_end(self) -> None:
        self._embeddings = []  # the bank is built: free the patch features (hundreds of MB on a full category)
