"""mToFNet and the supervised RGB-D baseline as LightningModules; evaluation is the shared anti-spoofing routine
(threshold at BPCER 5 % on genuine validation captures, APCER / BPCER / ACER / AUC overall and per display)."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F

from datamodules.batch import batch_size_of
from lightning_modules.mtofnet.networks import AgreementLoss, MToFNet, RGBDClassifierNet, agreement_loss
from lightning_modules.routines.spoof_detection import SpoofDetectionRoutine


def adamw_cosine(module: torch.nn.Module, trainer: Any, lr: float, weight_decay: float) -> dict[str, Any]:
    """AdamW with a per-epoch cosine decay over ``max_epochs`` (our recipe for both models, README.md)."""
    optimizer = torch.optim.AdamW(
        [p for p in module.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(trainer.max_epochs or 1, 1))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


class MToFNetModule(SpoofDetectionRoutine):
    """Two embedding models that learn to agree on genuine RGB-D pairs; the spoof score is their disagreement.

    Spoofs in a training batch are left out of the loss (mToFNet never trains on them; the datamodule's
    ``genuine_only: true`` keeps them out of the loader altogether). ``train/embedding_std`` (per-dimension
    std of the depth embeddings, ~1/sqrt(dim) when healthy, 0 when collapsed) is logged as the collapse check.

    Args:
        backbone: timm CNN of both encoders (ResNet-18 in our reading).
        pretrained: ImageNet weights for both encoders.
        dim: Embedding size.
        hidden: Hidden size of the MLP heads.
        loss: ``infonce`` (symmetric, other captures as negatives) or ``cosine_stopgrad``.
        temperature: InfoNCE temperature.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        bpcer_target: Genuine validation share above the threshold.
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        pretrained: bool = True,
        dim: int = 128,
        hidden: int = 512,
        loss: AgreementLoss = "infonce",
        temperature: float = 0.07,
        lr: float = 1e-4,
        weight_decay: float = 1e-4,
        bpcer_target: float = 0.05,
    ) -> None:
        super().__init__(bpcer_target)
        self.save_hyperparameters()
        agreement_loss(torch.zeros(2, 2), torch.zeros(2, 2), loss)  # validates the name now
        self.net = MToFNet(backbone, dim, hidden, pretrained)

    def score(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.net.score(batch["image"], batch["depth"])

    def score_map(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.net.score_map(batch["image"], batch["depth"])

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        genuine = batch["label"] == 0 if batch_size_of(batch) else None
        if genuine is None or int(genuine.sum()) < 2:  # InfoNCE needs a negative; BatchNorm two samples
            return None
        predicted, target = self.net(batch["image"][genuine], batch["depth"][genuine])
        loss = agreement_loss(predicted, target, self.hparams.loss, self.hparams.temperature)
        size = int(genuine.sum())
        with torch.no_grad():
            agreement = (predicted * target).sum(dim=-1).mean()
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log_dict(
            {"train/cosine": agreement, "train/embedding_std": target.std(dim=0).mean()}, batch_size=size
        )
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        return adamw_cosine(self, self.trainer, self.hparams.lr, self.hparams.weight_decay)


class RGBDSupervisedModule(SpoofDetectionRoutine):
    """The supervised baseline: a binary classifier over RGB + depth trained on the seen displays' spoofs; the
    spoof score is its probability, thresholded like mToFNet's (BPCER on genuine validation captures).

    Args:
        backbone: timm CNN name.
        inputs: ``rgbd`` (depth as a fourth channel) or ``rgb``.
        pretrained: ImageNet weights.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        bpcer_target: Genuine validation share above the threshold.
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        inputs: Literal["rgbd", "rgb"] = "rgbd",
        pretrained: bool = True,
        lr: float = 1e-4,
        weight_decay: float = 1e-4,
        bpcer_target: float = 0.05,
    ) -> None:
        super().__init__(bpcer_target)
        self.save_hyperparameters()
        self.net = RGBDClassifierNet(backbone, inputs, pretrained)

    def score(self, batch: dict[str, Any]) -> torch.Tensor:
        return torch.sigmoid(self.net(batch["image"], batch["depth"]).float())

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        size = batch_size_of(batch)
        if size == 0:
            return None
        logits = self.net(batch["image"], batch["depth"])
        loss = F.binary_cross_entropy_with_logits(logits.float(), batch["label"].float())
        accuracy = ((logits.detach() > 0).long() == batch["label"]).float().mean()
        self.log_dict({"train/loss": loss, "train/acc": accuracy}, prog_bar=True, batch_size=size)
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        return adamw_cosine(self, self.trainer, self.hparams.lr, self.hparams.weight_decay)
