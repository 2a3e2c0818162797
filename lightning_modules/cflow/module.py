"""CFlow-AD as a LightningModule: the flows train, the likelihood reference is fitted from the training
likelihoods; evaluation is the anomaly routine."""

from __future__ import annotations

from typing import Any

import torch

from datamodules.batch import batch_size_of
from lightning_modules.cflow.networks import CFlowNet
from lightning_modules.components.anomaly_output import AnomalyOutput
from lightning_modules.routines.anomaly_detection import AnomalyDetectionRoutine
from lightning_modules.routines.fitted_state import FittedStateMixin


class CFlowModule(FittedStateMixin, AnomalyDetectionRoutine):
    """CFlow-AD: conditional normalizing flows on a frozen CNN's multi-scale features (Adam 2e-4 in the paper,
    ResNet-18 as the TGI paper's baseline, Wide-ResNet-50-2 in CFlow's).

    Args:
        backbone: timm CNN encoder (frozen).
        layers: timm feature indices, one flow each (ResNets: 1, 2, 3 = layer1..layer3).
        pretrained: ImageNet weights of the encoder.
        pretrained_path: Local weight file or a checkpoint trained here.
        condition_dim: Positional-encoding width (128).
        blocks: Coupling blocks per flow (8).
        clamp: Soft clamp of the coupling log-scales (1.9).
        positions_per_step: Feature vectors sampled per scale and step (the paper's fibre batches; all when the
            batch has fewer). One optimizer step per training batch, ours.
        lr: Adam learning rate.
        blur_sigma: Gaussian smoothing of the anomaly map in pixels.
        pro_fpr_limit: Upper FPR of AUPRO.
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        layers: tuple[int, ...] = (1, 2, 3),
        pretrained: bool = True,
        pretrained_path: str | None = None,
        condition_dim: int = 128,
        blocks: int = 8,
        clamp: float = 1.9,
        positions_per_step: int = 4096,
        lr: float = 2e-4,
        blur_sigma: float = 4.0,
        pro_fpr_limit: float = 0.3,
    ) -> None:
        super().__init__(pro_fpr_limit)
        self.save_hyperparameters()
        self.net = CFlowNet(
            backbone, layers, pretrained, pretrained_path, condition_dim, blocks, clamp, blur_sigma
        )
        self._highest = torch.full_like(self.net.reference, -torch.inf)

    def on_train_epoch_start(self) -> None:
        self._highest = torch.full_like(self.net.reference, -torch.inf)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        if not batch_size_of(batch):
            return None
        losses = []
        scales = zip(self.net.encoder(batch["image"]), self.net.flows, strict=True)
        for scale, (features, flow) in enumerate(scales):
            vectors, conditions = self.net.vectors(features.float())
            if len(vectors) > self.hparams.positions_per_step:
                chosen = torch.randperm(len(vectors), device=vectors.device)[
                    : self.hparams.positions_per_step
                ]
                vectors, conditions = vectors[chosen], conditions[chosen]
            likelihood = flow.log_likelihood(vectors, conditions)
            self._highest[scale] = torch.maximum(self._highest[scale], likelihood.detach().max())
            losses.append(-likelihood.mean())
        loss = torch.stack(losses).sum()
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size_of(batch))
        return loss

    def fit_to_training_data(self) -> None:
        """The probabilities' reference: the highest training log-likelihood of this epoch, on every rank."""
        highest = self._highest
        if self.trainer.world_size > 1:
            highest = self.all_gather(highest).reshape(-1, len(highest)).amax(0)
        if torch.isfinite(highest).all():
            self.net.reference.copy_(highest)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.net.flows.parameters(), lr=self.hparams.lr)

    def anomaly_map(self, batch: dict[str, Any]) -> AnomalyOutput:
        with torch.no_grad():
            return self.net.anomaly_map(batch["image"])
