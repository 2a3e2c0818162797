"""Frozen multi-scale CNN features and anomaly-map smoothing, shared by the anomaly detectors.

PatchCore's memory bank and Reverse Distillation's teacher both read intermediate feature maps of an
ImageNet-pretrained CNN that never trains: the extractor stays in eval mode (BatchNorm statistics frozen) even
when Lightning puts the module in training mode, and its parameters take no gradient.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.functional import gaussian_blur

from lightning_modules.components.backbones import Normalize, create_backbone


class FrozenFeatures(nn.Module):
    """[0, 1] images, normalized with the backbone's own statistics -> its feature maps at ``layers`` (timm
    feature indices, the same strides across families: for ResNets 1 = layer1 (stride 4), 2 = layer2 (8),
    3 = layer3 (16), 4 = layer4 (32); for EfficientNet-Lite 1 = blocks.1 (4), 2 = blocks.2 (8), 3 = blocks.4
    (16), 4 = blocks.6 (32))."""

    def __init__(
        self,
        backbone: str,
        layers: Sequence[int],
        pretrained: bool = True,
        pretrained_path: str | None = None,
    ) -> None:
        super().__init__()
        self.body = create_backbone(
            backbone, pretrained, pretrained_path, features_only=True, out_indices=tuple(layers)
        )
        self.normalize = Normalize.of_backbone(self.body)
        self.channels: list[int] = list(self.body.feature_info.channels())
        self.strides: list[int] = list(self.body.feature_info.reduction())
        self.body.eval()
        for parameter in self.body.parameters():
            parameter.requires_grad_(False)

    def train(self, mode: bool = True) -> FrozenFeatures:
        super().train(mode)
        self.body.eval()  # frozen BatchNorm statistics, whatever the module's mode
        return self

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.body(self.normalize(images))


def smooth_map(maps: torch.Tensor, size: tuple[int, int], sigma: float) -> torch.Tensor:
    """(B, 1, h, w) scores -> (B, 1, H, W): bilinear up-sampling, then a Gaussian blur (kernel 2*ceil(4 sigma)+1)
    as PatchCore and Reverse Distillation smooth their maps; ``sigma`` 0 skips the blur."""
    maps = F.interpolate(maps.float(), size=size, mode="bilinear", align_corners=False)
    if sigma <= 0:
        return maps
    kernel = 2 * int(torch.tensor(4 * sigma).ceil()) + 1
    kernel = min(kernel, 2 * (min(size) // 2) - 1)  # reflect padding must stay inside small images
    return gaussian_blur(maps, [kernel, kernel], [sigma, sigma])
