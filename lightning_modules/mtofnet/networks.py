"""mToFNet's networks (Jeong et al., WACV 2022; the concrete design is ours, README.md) and the
supervised RGB(-D) baseline.

Two embedding models — RGB and depth, each a timm CNN plus an MLP projection to an L2-normalized embedding — and
a predictor that maps the RGB embedding to the depth embedding of the same capture. Trained on genuine pairs
only; a recaptured display shows a 3-D-looking object in RGB over a flat depth map, so the two disagree:
spoof score = 1 - cos(P(E_r(x)), E_d(d)). Applied per location of the feature maps, the same heads give a
score map.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from lightning_modules.components.backbones import Normalize, create_backbone, init_classifier_normal

AgreementLoss = Literal["infonce", "cosine_stopgrad"]
DEPTH_MEAN, DEPTH_STD = (0.5,), (0.25,)


def mlp(dim_in: int, hidden: int, dim_out: int) -> nn.Sequential:
    """Linear -> BatchNorm -> ReLU -> Linear (SimCLR/SimSiam-style projection and prediction heads)."""
    return nn.Sequential(
        nn.Linear(dim_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim_out)
    )


class EmbeddingNet(nn.Module):
    """A timm CNN (``in_chans`` 3 for RGB, 1 for depth) with an MLP projection to an L2-normalized embedding.

    Args:
        backbone: timm CNN name (``resnet18``).
        in_chans: Input channels (a 3-channel pretrained stem is adapted by timm).
        dim: Embedding size.
        hidden: Projection hidden size.
        pretrained: Hub weights.
        pretrained_path: Local weights, or a ``.ckpt`` trained in this framework.
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        in_chans: int = 3,
        dim: int = 128,
        hidden: int = 512,
        pretrained: bool = True,
        pretrained_path: str | None = None,
    ) -> None:
        super().__init__()
        self.backbone = create_backbone(
            backbone, pretrained, pretrained_path, num_classes=0, in_chans=in_chans
        )
        # RGB as the backbone's weights were trained to see it; depth has statistics of its own
        self.normalize = (
            Normalize.of_backbone(self.backbone) if in_chans == 3 else Normalize(DEPTH_MEAN, DEPTH_STD)
        )
        self.projection = mlp(self.backbone.num_features, hidden, dim)

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(self.normalize(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, dim) unit vectors."""
        pooled = self.feature_maps(x).float().mean(dim=(-2, -1))
        return F.normalize(self.projection(pooled), dim=-1)

    def dense(self, x: torch.Tensor) -> torch.Tensor:
        """(B, h, w, dim) unit vectors: the projection applied at every feature-map location."""
        maps = self.feature_maps(x).float()
        flat = rearrange(maps, "b c h w -> (b h w) c")
        return F.normalize(self.projection(flat), dim=-1).reshape(
            maps.shape[0], maps.shape[2], maps.shape[3], -1
        )


class MToFNet(nn.Module):
    """E_r (RGB), E_d (depth) and the predictor P: E_r's embedding -> E_d's embedding of the same capture.

    Args:
        backbone: timm CNN of both encoders.
        dim: Embedding size.
        hidden: Hidden size of the projection and prediction MLPs.
        pretrained: Hub weights for both encoders (the depth stem is adapted to one channel).
    """

    def __init__(
        self, backbone: str = "resnet18", dim: int = 128, hidden: int = 512, pretrained: bool = True
    ) -> None:
        super().__init__()
        self.rgb = EmbeddingNet(backbone, 3, dim, hidden, pretrained)
        self.depth = EmbeddingNet(backbone, 1, dim, hidden, pretrained)
        self.predictor = mlp(dim, hidden, dim)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(P(E_r(rgb)), E_d(depth)), both (B, dim) unit vectors."""
        return F.normalize(self.predictor(self.rgb(rgb)), dim=-1), self.depth(depth)

    def score(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """Spoof score 1 - cos(P(E_r(rgb)), E_d(depth)), (B,), in [0, 2]."""
        predicted, target = self(rgb, depth)
        return 1.0 - (predicted * target).sum(dim=-1)

    def score_map(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """The score at every feature-map location, (B, 1, h, w)."""
        rgb_maps, depth_maps = self.rgb.dense(rgb), self.depth.dense(depth)
        height, width = rgb_maps.shape[1:3]
        predicted = F.normalize(self.predictor(flatten_locations(rgb_maps)), dim=-1)
        target = flatten_locations(depth_maps)
        score = 1.0 - (predicted * target).sum(dim=-1)
        return score.reshape(rgb.shape[0], 1, height, width)


def flatten_locations(maps: torch.Tensor) -> torch.Tensor:
    """(B, h, w, dim) -> (B*h*w, dim)."""
    return rearrange(maps, "b h w d -> (b h w) d")


def agreement_loss(
    predicted: torch.Tensor, target: torch.Tensor, kind: AgreementLoss = "infonce", temperature: float = 0.07
) -> torch.Tensor:
    """``infonce``: symmetric InfoNCE, the batch's other genuine captures as negatives; ``cosine_stopgrad``:
    1 - cos(predicted, stop-gradient(target)) (SimSiam-style, no negatives)."""
    if kind == "cosine_stopgrad":
        return (1.0 - (predicted * target.detach()).sum(dim=-1)).mean()
    if kind != "infonce":
        raise ValueError(f"loss must be infonce or cosine_stopgrad, got {kind!r}")
    logits = predicted.float() @ target.float().T / temperature
    targets = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))


class RGBDClassifierNet(nn.Module):
    """The supervised baseline: one timm CNN over RGB (+ depth as a fourth channel), one spoof logit.

    Args:
        backbone: timm CNN name.
        inputs: ``rgbd`` (early fusion) or ``rgb``.
        pretrained: Hub weights (the stem is adapted to 4 channels).
    """

    def __init__(
        self, backbone: str = "resnet18", inputs: Literal["rgbd", "rgb"] = "rgbd", pretrained: bool = True
    ) -> None:
        super().__init__()
        if inputs not in ("rgbd", "rgb"):
            raise ValueError(f"inputs must be rgbd or rgb, got {inputs!r}")
        self.inputs = inputs
        self.backbone = create_backbone(
            backbone, pretrained, num_classes=1, in_chans=4 if inputs == "rgbd" else 3
        )
        init_classifier_normal(self.backbone)
        self.normalize_rgb = Normalize.of_backbone(self.backbone)
        self.normalize_depth = Normalize(DEPTH_MEAN, DEPTH_STD)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """Spoof logits (B,)."""
        x = self.normalize_rgb(rgb)
        if self.inputs == "rgbd":
            x = torch.cat([x, self.normalize_depth(depth)], dim=1)
        return self.backbone(x).squeeze(1)
