"""The one-logit image classifier every real/fake detector ends in (Wang et al.'s CNNDetection head)."""

from __future__ import annotations

import torch
from torch import nn

from lightning_modules.components.backbones import Normalize, create_backbone, init_classifier_normal


class BinaryLogitNet(nn.Module):
    """Optional normalization (the backbone's own statistics), then a timm backbone with one output logit
    (head ~ N(0, 0.02)).

    Args:
        backbone: timm model name.
        pretrained: Start from the hub's weights.
        pretrained_path: Local weights file (implies pretrained).
        in_chans: Input channels (the stem is adapted when loading 3-channel weights).
        normalize: Normalize [0, 1] inputs with the statistics the backbone's weights were trained with
            (``backbone.pretrained_cfg``); off for inputs that are not images, or normalized by the caller.
    """

    def __init__(
        self,
        backbone: str = "resnet50",
        pretrained: bool = True,
        pretrained_path: str | None = None,
        in_chans: int = 3,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        self.backbone = create_backbone(
            backbone, pretrained=pretrained, pretrained_path=pretrained_path, num_classes=1, in_chans=in_chans
        )
        self.normalize = Normalize.of_backbone(self.backbone) if normalize else nn.Identity()
        init_classifier_normal(self.backbone)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (B,)."""
        return self.backbone(self.normalize(x)).squeeze(1)
