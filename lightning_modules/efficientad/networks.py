"""EfficientAD (Batzner et al., WACV 2024): a student–teacher pair plus an autoencoder for logical anomalies.

The student (a patch description network, PDN) learns to predict the frozen teacher's features of normal images,
with a hard-feature loss (only the errors above their 0.999 quantile count); an autoencoder learns to rebuild the
teacher's features from a 1x1 bottleneck (so it captures the global, "logical" layout), and the student's second
half of channels learns to predict the autoencoder's output. The anomaly map averages the student–teacher and the
student–autoencoder discrepancies, each normalized by its 0.9 / 0.995 quantiles on normal training images.

Teacher (ours, and every run records it): the paper's teacher is a PDN distilled from WideResNet-101 features on
ImageNet, weights that cannot be fetched here; we use a frozen timm CNN's features directly — by default ResNet-18
layer2 with layer3 up-sampled to it, 128 + 256 = the paper's 384 channels at stride 8 — normalized per channel
with training-image statistics. The ImageNet penalty term is off (no ImageNet here).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.components.anomaly_output import AnomalyOutput
from lightning_modules.components.feature_extractor import FrozenFeatures, smooth_map


def patch_description_network(out_channels: int) -> nn.Sequential:
    """PDN-small: 4x4 conv, pool, 4x4 conv, pool, 3x3 conv, 4x4 conv (stride 4 overall, receptive field 33 px)."""
    return nn.Sequential(
        nn.Conv2d(3, 128, 4, padding=3),
        nn.ReLU(inplace=True),
        nn.AvgPool2d(2, 2, padding=1),
        nn.Conv2d(128, 256, 4, padding=3),
        nn.ReLU(inplace=True),
        nn.AvgPool2d(2, 2, padding=1),
        nn.Conv2d(256, 256, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, out_channels, 4),
    )


def hard_feature_loss(teacher: torch.Tensor, student: torch.Tensor, quantile: float = 0.999) -> torch.Tensor:
    """Mean squared student–teacher error over the elements whose error is at or above its ``quantile``: only
    the hardest errors train the student (the paper's L_hard)."""
    distance = (teacher - student) ** 2
    hard = torch.quantile(distance.detach().flatten()[: 1 << 24], quantile)  # torch.quantile's input limit
    return distance[distance >= hard].mean()


class FeatureAutoencoder(nn.Module):
    """Images -> 64-d bottleneck (strided convolutions, then a global average) -> teacher-shaped features: six
    stages of resize + 3x3 conv (+ dropout) up to the teacher's grid, then two 3x3 convolutions."""

    def __init__(self, out_channels: int, width: int = 64, dropout: float = 0.2) -> None:
        super().__init__()
        channels = [3, 32, 32, width, width, width, width]
        layers: list[nn.Module] = []
        for a, b in zip(channels, channels[1:], strict=False):
            layers += [nn.Conv2d(a, b, 4, 2, 1), nn.ReLU(inplace=True)]
        self.encoder = nn.Sequential(*layers[:-1], nn.AdaptiveAvgPool2d(1))
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True), nn.Dropout(dropout))
            for _ in range(6)
        )
        self.head = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, out_channels, 3, padding=1),
        )

    def forward(self, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if min(images.shape[-2:]) < 64:  # six stride-2 convolutions need 64 px
            images = F.interpolate(images, size=(64, 64), mode="bilinear", align_corners=False)
        x = self.encoder(images)
        for level, stage in enumerate(self.stages):  # 1/32, 1/16, ..., 1 of the grid
            scale = 2.0 ** (level - len(self.stages) + 1)
            x = stage(
                F.interpolate(
                    x,
                    size=(max(1, math.ceil(size[0] * scale)), max(1, math.ceil(size[1] * scale))),
                    mode="bilinear",
                    align_corners=False,
                )
            )
        return self.head(x)


class EfficientADNet(nn.Module):
    """Teacher (frozen CNN features, channel-normalized), student PDN (2 x teacher channels), autoencoder."""

    def __init__(
        self,
        backbone: str = "resnet18",
        layers: Sequence[int] = (2, 3),
        pretrained: bool = True,
        pretrained_path: str | None = None,
        hard_quantile: float = 0.999,
        blur_sigma: float = 0.0,
    ) -> None:
        super().__init__()
        self.teacher = FrozenFeatures(backbone, layers, pretrained, pretrained_path)
        self.channels = sum(self.teacher.channels)
        self.student = patch_description_network(2 * self.channels)
        self.autoencoder = FeatureAutoencoder(self.channels)
        self.hard_quantile, self.blur_sigma = hard_quantile, blur_sigma
        self.register_buffer("teacher_mean", torch.zeros(1, self.channels, 1, 1))
        self.register_buffer("teacher_std", torch.ones(1, self.channels, 1, 1))
        # 0.9 and 0.995 quantiles of the student-teacher and student-autoencoder maps on normal images
        self.register_buffer("quantiles", torch.tensor([0.0, 1.0, 0.0, 1.0]))

    @torch.no_grad()
    def teacher_features(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        maps = self.teacher(images)
        grid = maps[0].shape[-2:]
        features = torch.cat(
            [
                F.interpolate(m.float(), size=grid, mode="bilinear", align_corners=False)
                if m.shape[-2:] != grid
                else m.float()
                for m in maps
            ],
            dim=1,
        )
        return (features - self.teacher_mean) / self.teacher_std if normalize else features

    def student_features(
        self, images: torch.Tensor, grid: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(the half that predicts the teacher, the half that predicts the autoencoder) on the teacher's grid."""
        out = F.interpolate(self.student(images), size=grid, mode="bilinear", align_corners=False)
        return out[:, : self.channels], out[:, self.channels :]

    def losses(self, images: torch.Tensor, augmented: torch.Tensor) -> dict[str, torch.Tensor]:
        """Hard student–teacher loss, autoencoder loss, student–autoencoder loss (on the augmented images)."""
        teacher = self.teacher_features(images)
        grid = teacher.shape[-2:]
        student, _ = self.student_features(images, grid)
        loss_hard = hard_feature_loss(teacher, student, self.hard_quantile)
        teacher_augmented = self.teacher_features(augmented)
        rebuilt = self.autoencoder(augmented, grid)
        _, student_ae = self.student_features(augmented, grid)
        loss_ae = ((teacher_augmented - rebuilt) ** 2).mean()
        loss_stae = ((rebuilt - student_ae) ** 2).mean()
        return {"hard": loss_hard, "ae": loss_ae, "stae": loss_stae}

    def raw_maps(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(student–teacher, student–autoencoder) maps, (B, 1, h, w), before normalization."""
        teacher = self.teacher_features(images)
        grid = teacher.shape[-2:]
        student, student_ae = self.student_features(images, grid)
        rebuilt = self.autoencoder(images, grid)
        return ((teacher - student) ** 2).mean(1, keepdim=True), ((rebuilt - student_ae) ** 2).mean(
            1, keepdim=True
        )

    def anomaly_map(self, images: torch.Tensor) -> AnomalyOutput:
        st, ae = self.raw_maps(images)
        q = self.quantiles
        combined = 0.5 * 0.1 * (st - q[0]) / (q[1] - q[0]).clamp_min(1e-12) + 0.5 * 0.1 * (ae - q[2]) / (
            q[3] - q[2]
        ).clamp_min(1e-12)
        maps = smooth_map(combined, images.shape[-2:], self.blur_sigma)
        return AnomalyOutput(anomaly_map=maps, pred_score=maps.flatten(1).amax(1))
