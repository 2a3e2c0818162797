"""PatchCore, Reverse Distillation, CFlow and EfficientAD as LightningModules; evaluation is the shared anomaly
routine."""

from __future__ import annotations

import logging
from typing import Any

import torch

from datamodules.base import batch_size_of
from lightning_modules.anomaly.cflow import CFlowNet
from lightning_modules.anomaly.efficientad import EfficientADNet
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


class CFlowModule(AnomalyDetectionRoutine):
    """CFlow-AD: conditional normalising flows on a frozen CNN's multi-scale features (Adam 2e-4 in the paper,
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
            batch has fewer). One optimiser step per training batch, ours.
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

    def on_train_epoch_start(self) -> None:
        self._highest = torch.full_like(self.net.reference, -torch.inf)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        if not batch_size_of(batch):
            return None
        losses = []
        for scale, (features, flow) in enumerate(
            zip(self.net.encoder(batch["image"]), self.net.flows, strict=True)
        ):
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

    def on_train_epoch_end(self) -> None:
        """The probabilities' reference: the highest training log-likelihood of this epoch, on every rank."""
        highest = self._highest
        if self.trainer.world_size > 1:
            highest = self.all_gather(highest).reshape(-1, len(highest)).amax(0)
        if torch.isfinite(highest).all():
            self.net.reference.copy_(highest)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.net.flows.parameters(), lr=self.hparams.lr)

    def anomaly_map(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            return self.net.anomaly_map(batch["image"])


class EfficientADModule(AnomalyDetectionRoutine):
    """EfficientAD (small): student PDN + autoencoder against a frozen teacher (Adam 1e-4, weight decay 1e-5, lr x 0.1
    after 95 % of the steps; 70,000 steps of batch 1 in the paper). The teacher's channel statistics are measured
    on the training images before the first step; the map-normalising quantiles on the training images (eval
    mode) before every validation, so the checkpoint carries the ones test uses. See ``efficientad.py`` for the
    teacher we use instead of the paper's distilled PDN.

    Args:
        backbone: timm CNN whose features are the teacher (frozen).
        layers: timm feature indices concatenated at the first one's stride (ResNet-18 2, 3: 384 channels).
        pretrained: ImageNet weights of the teacher.
        pretrained_path: Local weight file or a checkpoint trained here.
        hard_quantile: Quantile above which student–teacher errors count in the hard loss (0.999).
        augment_strength: Colour jitter range of the autoencoder branch's inputs (0.2: factors in [0.8, 1.2]).
        lr, weight_decay: Adam.
        blur_sigma: Gaussian smoothing of the anomaly map in pixels (0: none, as the paper).
        pro_fpr_limit: Upper FPR of AUPRO.
    """

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

    def _normal_images(self):
        """The training images, once each and unaugmented order aside (the datamodule's training loader)."""
        datamodule = getattr(self.trainer, "datamodule", None)
        loader = datamodule.train_dataloader() if datamodule is not None else self.trainer.train_dataloader
        for batch in loader:
            if batch_size_of(batch):
                yield batch["image"].to(self.device)

    @torch.no_grad()
    def on_train_start(self) -> None:
        if bool(self.teacher_stats_ready):  # resumed: measured before
            return
        sums = torch.zeros(3, self.net.channels, device=self.device)  # count, sum, sum of squares
        for images in self._normal_images():
            features = self.net.teacher_features(images, normalise=False).double()
            sums += torch.stack([torch.full_like(features[0, :, 0, 0], features[:, 0].numel()),
                                 features.sum((0, 2, 3)), (features**2).sum((0, 2, 3))]).float()  # fmt: skip
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
        from torchvision.transforms.v2 import functional as TF

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
    def on_validation_epoch_start(self) -> None:
        if not self.trainer.sanity_checking and self.trainer.state.fn == "fit":
            self._fit_quantiles()
        super().on_validation_epoch_start()

    @torch.no_grad()
    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """After the last training step, measure the quantiles too: a fit that ends between validations (a
        ``max_steps`` mid-epoch, ``check_val_every_n_epoch`` > 1) must still save the ones its weights need."""
        trainer = self.trainer
        last_step = 0 < trainer.max_steps <= self.global_step
        last_epoch = trainer.max_epochs is not None and 0 < trainer.max_epochs <= self.current_epoch + 1
        if last_step or (last_epoch and batch_idx + 1 >= trainer.num_training_batches):
            self._fit_quantiles()

    def _fit_quantiles(self) -> None:
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
        sample = lambda x: x[torch.randperm(len(x), device=x.device)[: 1 << 24]]  # noqa: E731  (quantile's limit)
        self.net.quantiles.copy_(
            torch.cat([torch.quantile(sample(st), levels), torch.quantile(sample(ae), levels)])
        )

    def configure_optimizers(self):
        parameters = list(self.net.student.parameters()) + list(self.net.autoencoder.parameters())
        optimizer = torch.optim.Adam(parameters, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, int(0.95 * steps)), gamma=0.1)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def anomaly_map(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            return self.net.anomaly_map(batch["image"])
