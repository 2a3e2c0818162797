"""The image classifier network: input normalization, then a timm (or registered CIFAR) backbone with a head."""

from __future__ import annotations

import torch
from torch import nn

from lightning_modules.components.backbones import InputNormalization, create_backbone, input_normalizer


class ImageClassifierNet(nn.Module):
    """[0, 1] images -> normalization -> backbone -> (B, num_classes) logits.

    Args:
        backbone: timm model name, or a registered CIFAR network (``cifar_resnet110``, ``cifar_wrn28_10``...).
        num_classes: Output classes.
        pretrained: Hub weights for the backbone.
        pretrained_path: Local weights file (or a checkpoint trained here).
        normalization: Input normalization (an ``InputNormalization``; ``backbone``: the statistics a pretrained
            backbone's weights were trained with, use it with ``pretrained``).
        drop_path_rate: Stochastic depth (ResNet-110-SD: 0.5).

    Example:
        >>> net = ImageClassifierNet("cifar_resnet20", num_classes=10)
        >>> net(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        backbone: str = "cifar_resnet110",
        num_classes: int = 10,
        pretrained: bool = False,
        pretrained_path: str | None = None,
        normalization: InputNormalization = "cifar",
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        extra = {"drop_path_rate": drop_path_rate} if drop_path_rate else {}
        self.backbone = create_backbone(
            backbone, pretrained=pretrained, pretrained_path=pretrained_path, num_classes=num_classes, **extra
        )
        self.normalize = input_normalizer(normalization, self.backbone)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.normalize(images))
