"""EfficientAD (small) as a LightningModule: student and autoencoder train against the frozen teacher, the
map-normalizing quantiles are fitted on the training images; evaluation is the anomaly routine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torchvision.transforms.v2 import functional as TF

from datamodules.batch import TrainingImages, batch_size_of
from lightning_modules.components.anomaly_output import AnomalyOutput
from lightning_modules.efficientad.networks import EfficientADNet
from lightning_modules.routines.anomaly_detection import AnomalyDetectionRoutine
from lightning_modules.routines.fitted_state import FittedStateMixin

QUANTILE_SAMPLE = 1 << 24  # torch.quantile's input limit


class EfficientADModule(FittedStateMixin, AnomalyDetectionRoutine):
    """EfficientAD (small): student PDN + autoencoder against a frozen teacher (Adam 1e-4, weight decay 1e-5, lr
    x 0.1 after 95 % of the steps; 70,000 steps of batch 1 in the paper). The teacher's channel statistics are
    measured on the training images before the first step; the map-normalizing quantiles on the training images
    (eval mode) before every validation and after the last step, so the checkpoint carries the ones test uses.
    See ``networks.py`` for the teacher we use instead of the paper's distilled PDN.

    Args:
        backbone: timm CNN whose features are the teacher (frozen).
        layers: timm feature indices concatenated at the first one's stride (ResNet-18 2, 3: 384 channels).
        pretrained: ImageNet weights of the teacher.
        pretrained_path: Local weight file or a checkpoint trained here.
        hard_quantile: Quantile above which student–teacher errors count in the hard loss (0.999).
        augment_strength: Color jitter range of the autoencoder branch's inputs (0.2: factors in [0.8, 1.2]).
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        blur_sigma: Gaussian smoothing of the anomaly map in pixels (0: none, as the paper).
        pro_fpr_limit: Upper FPR of AUPRO.
    """

    refit_every_epoch = False  # a pass over the training images: only before validations and at the end

    def __init__(
        self,
        backbone: str = "resnet18",
        layers: tuple[int, ...] = (2, 3),
        pretrained: bool = True,
        pretrained_path: str | None = None,
        hard_quantile: float = 0.999,
        augment_strength: float = 0.2,
        lr: float = 1e-4,
        weight_decay: float = 1e-5,
        blur_sigma: float = 0.0,
        pro_fpr_limit: float = 0.3,
    ) -> None:
        super().__init__(pro_fpr_limit)
        self.save_hyperparameters()
        self.net = EfficientADNet(backbone, layers, pretrained, pretrained_path, hard_quantile, blur_sigma)
        self.register_buffer("teacher_stats_ready", torch.tensor(False))

    def _normal_images(self) -> Iterator[torch.Tensor]:
        """The training images, once each (the datamodule's training loader)."""
        data = self.data_if(TrainingImages)
        loader = data.train_dataloader() if data is not None else self.trainer.train_dataloader
        for batch in loader:
            if batch_size_of(batch):
                yield batch["image"].to(self.device)

    @torch.no_grad()
    def on_train_start(self) -> None:
        if bool(self.teacher_stats_ready):  # resumed: measured before
            return
        sums = torch.zeros(3, self.net.channels, device=self.device)  # count, sum, sum of squares
        for images in self._normal_images():
            features = self.net.teacher_features(images, normalize=False).double()
            count = torch.full_like(features[0, :, 0, 0], features[:, 0].numel())
            sums += torch.stack([count, features.sum((0, 2, 3)), (features**2).sum((0, 2, 3))]).float()
        sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
        mean = sums[1] / sums[0]
        std = (sums[2] / sums[0] - mean**2).clamp_min(0).sqrt()
        # a channel that never fires on the few normal images (std ~0) would turn any activation on a test image
        # into an astronomically large distance; floored at a tenth of the mean channel std (ours)
        std = std.clamp_min(0.1 * float(std.mean()) + 1e-12)
        self.net.teacher_mean.copy_(mean.view(1, -1, 1, 1))
        self.net.teacher_std.copy_(std.view(1, -1, 1, 1))
        self.teacher_stats_ready.fill_(True)

    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        """One of brightness, contrast or saturation, by a factor in [1 - s, 1 + s] (the paper's AE inputs)."""
        strength = self.hparams.augment_strength
        factor = float(torch.empty(()).uniform_(1 - strength, 1 + strength))
        adjust = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation][int(torch.randint(3, ()))]
        return adjust(images, factor).clamp(0, 1)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        if not batch_size_of(batch):
            return None
        losses = self.net.losses(batch["image"], self._augment(batch["image"]))
        loss = losses["hard"] + losses["ae"] + losses["stae"]
        size = batch_size_of(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log_dict({f"train/loss_{k}": v for k, v in losses.items()}, batch_size=size)
        return loss

    @torch.no_grad()
    def fit_to_training_data(self) -> None:
        """0.9 / 0.995 quantiles of both raw maps over the training images, gathered from every rank."""
        training = self.training
        self.eval()
        st, ae = [], []
        for images in self._normal_images():
            maps = self.net.raw_maps(images)
            st.append(maps[0].flatten())
            ae.append(maps[1].flatten())
        self.train(training)
        st, ae = torch.cat(st), torch.cat(ae)
        if self.trainer.world_size > 1:
            st, ae = self.all_gather(st).flatten(), self.all_gather(ae).flatten()
        levels = torch.tensor([0.9, 0.995], device=st.device)

        def sample(x: torch.Tensor) -> torch.Tensor:
            return x[torch.randperm(len(x), device=x.device)[:QUANTILE_SAMPLE]]

        self.net.quantiles.copy_(
            torch.cat([torch.quantile(sample(st), levels), torch.quantile(sample(ae), levels)])
        )

    def configure_optimizers(self) -> dict[str, Any]:
        parameters = list(self.net.student.parameters()) + list(self.net.autoencoder.parameters())
        optimizer = torch.optim.Adam(parameters, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, int(0.95 * steps)), gamma=0.1)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def anomaly_map(self, batch: dict[str, Any]) -> AnomalyOutput:
        with torch.no_grad():
            return self.net.anomaly_map(batch["image"])
