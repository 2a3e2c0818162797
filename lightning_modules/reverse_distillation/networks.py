"""Reverse Distillation (Deng & Li, CVPR 2022): a frozen pretrained teacher encoder, a trainable one-class
bottleneck (OCBE) that fuses the teacher's multi-scale features into one compact code, and a student decoder
that must rebuild the teacher's features from that code. Trained on normal images only, the student fails to
rebuild what the bottleneck has never seen; the per-position cosine distance between teacher and student
features, summed over scales, is the anomaly map.

The residual blocks are timm's ResNet blocks (BasicBlock for ResNet-18/34 widths, Bottleneck for wider ones).
Our decoder stage is a 2x2 transposed convolution followed by those blocks (the official ``de_resnet`` puts the
transposed convolution inside its first block).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from timm.models.resnet import BasicBlock, Bottleneck
from torch import nn

from lightning_modules.components.anomaly_output import AnomalyOutput
from lightning_modules.components.feature_extractor import FrozenFeatures, smooth_map

DistillationLoss = Literal["per_position", "flattened"]


def conv_bn_relu(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def residual_blocks(in_channels: int, out_channels: int, count: int, stride: int = 1) -> nn.Sequential:
    """``count`` timm ResNet blocks ending at ``out_channels`` (Bottleneck when it is >= 256, else BasicBlock);
    the first one changes width and stride through a 1x1 projection shortcut."""
    block = Bottleneck if out_channels >= 256 else BasicBlock
    planes = out_channels // block.expansion
    shortcut = None
    if stride != 1 or in_channels != out_channels:
        shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
        )
    layers = [block(in_channels, planes, stride, shortcut)]
    layers += [block(out_channels, planes) for _ in range(count - 1)]
    return nn.Sequential(*layers)


class OneClassBottleneck(nn.Module):
    """OCBE: multi-scale feature fusion (the shallower maps strided down to the deepest one's size and
    concatenated with it) and the one-class embedding (residual blocks with stride 2) -> a code of
    ``2 * channels[-1]`` channels at twice the deepest stride."""

    def __init__(self, channels: Sequence[int], blocks: int = 1) -> None:
        super().__init__()
        deepest = channels[-1]
        self.downsample = nn.ModuleList()
        for i, width in enumerate(channels[:-1]):
            steps, current = [], width
            for _ in range(len(channels) - 1 - i):
                following = min(current * 2, deepest)
                steps.append(conv_bn_relu(current, following, stride=2))
                current = following
            if current != deepest:
                steps.append(conv_bn_relu(current, deepest, stride=1))
            self.downsample.append(nn.Sequential(*steps))
        self.embed = residual_blocks(deepest * len(channels), 2 * deepest, blocks, stride=2)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        fused = [down(f) for down, f in zip(self.downsample, features[:-1], strict=True)] + [features[-1]]
        return self.embed(torch.cat(fused, dim=1))


class StudentDecoder(nn.Module):
    """Rebuilds the teacher's feature maps from the bottleneck code, deepest first: one stage per teacher scale,
    each a 2x2 transposed convolution (x2 resolution) and ``blocks`` residual blocks."""

    def __init__(self, channels: Sequence[int], blocks: int = 2) -> None:
        super().__init__()
        widths = [2 * channels[-1], *reversed(channels)]
        self.stages = nn.ModuleList(
            nn.Sequential(
                nn.ConvTranspose2d(widths[i], widths[i + 1], 2, stride=2, bias=False),
                nn.BatchNorm2d(widths[i + 1]),
                nn.ReLU(inplace=True),
                residual_blocks(widths[i + 1], widths[i + 1], blocks),
            )
            for i in range(len(channels))
        )

    def forward(self, code: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for stage in self.stages:
            code = stage(code)
            outputs.append(code)
        return outputs[::-1]  # shallowest first, as the teacher's


def distillation_loss(
    teacher: Sequence[torch.Tensor], student: Sequence[torch.Tensor], mode: DistillationLoss = "per_position"
) -> torch.Tensor:
    """Sum over scales of the mean cosine distance: per spatial position (the paper's eq. 2) or between whole
    flattened maps per image (``flattened``, as the official code and anomalib compute it)."""
    if mode not in ("per_position", "flattened"):
        raise ValueError(f"loss must be 'per_position' or 'flattened', got {mode!r}")
    total = teacher[0].new_zeros(())
    for t, s in zip(teacher, student, strict=True):
        t, s = t.float(), s.float()
        if mode == "flattened":
            t, s = t.flatten(1), s.flatten(1)
        total = total + (1 - F.cosine_similarity(t, s, dim=1)).mean()
    return total


class ReverseDistillationNet(nn.Module):
    """Teacher (frozen) -> OCBE -> student decoder.

    Args:
        backbone: timm CNN of the teacher (Wide-ResNet-50-2 in the paper).
        layers: timm feature indices distilled (ResNets: 1, 2, 3 = layer1..layer3).
        pretrained / pretrained_path: ImageNet weights of the teacher (see ``create_backbone``).
        bottleneck_blocks: Residual blocks of the one-class embedding.
        decoder_blocks: Residual blocks per decoder stage.
        blur_sigma: Gaussian smoothing of the anomaly map, in pixels.
    """

    def __init__(
        self,
        backbone: str = "wide_resnet50_2",
        layers: Sequence[int] = (1, 2, 3),
        pretrained: bool = True,
        pretrained_path: str | None = None,
        bottleneck_blocks: int = 1,
        decoder_blocks: int = 2,
        blur_sigma: float = 4.0,
    ) -> None:
        super().__init__()
        self.teacher = FrozenFeatures(backbone, layers, pretrained, pretrained_path)
        strides = self.teacher.strides
        if any(b != 2 * a for a, b in zip(strides, strides[1:], strict=False)):
            raise ValueError(f"Reverse Distillation needs layers whose strides double, got strides {strides}")
        self.bottleneck = OneClassBottleneck(self.teacher.channels, bottleneck_blocks)
        self.student = StudentDecoder(self.teacher.channels, decoder_blocks)
        self.blur_sigma = blur_sigma

    def forward(self, images: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(teacher features, student features), shallowest first."""
        teacher = self.teacher(images)
        return teacher, self.student(self.bottleneck(teacher))

    @torch.no_grad()
    def anomaly_map(self, images: torch.Tensor) -> AnomalyOutput:
        """(anomaly maps (B, 1, H, W): per-position 1 - cos summed over scales, smoothed; image scores (B,):
        the map's maximum)."""
        teacher, student = self(images)
        size = tuple(images.shape[-2:])
        maps = sum(
            F.interpolate(
                (1 - F.cosine_similarity(t.float(), s.float(), dim=1))[:, None], size=size, mode="bilinear"
            )
            for t, s in zip(teacher, student, strict=True)
        )
        maps = smooth_map(maps, size, self.blur_sigma)
        return AnomalyOutput(anomaly_map=maps, pred_score=maps.flatten(1).amax(dim=1))
