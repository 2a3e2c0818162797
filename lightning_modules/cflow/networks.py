"""CFlow-AD (Gudovskiy et al., WACV 2022): one conditional normalizing flow per feature scale of a frozen CNN.

Every feature vector of a normal image, conditioned on a 2D sinusoidal encoding of its position, is mapped by an
invertible flow to a standard Gaussian; training maximizes its exact log-likelihood. At test, each scale's
per-position log-likelihood (per dimension) is turned into a probability relative to the highest one seen on
training images, up-sampled and summed over scales; the anomaly map is the number of scales minus that sum (low
likelihood = anomalous), smoothed like the other detectors', and the image score its maximum.

The coupling block follows FrEIA's ``AllInOneBlock`` as CFlow uses it (affine coupling of half the channels by a
two-layer MLP of the other half and the condition, soft-clamped log-scales with ``clamp`` 1.9, a learnt
softplus global scale and offset, a fixed random orthogonal mixing of the channels): written here in 40 lines
rather than adding FrEIA for one class. Ours: the anomaly map's reference is the training maximum (a checkpoint
buffer) instead of the maximum over the test batch, so an image's score does not depend on its batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.components.anomaly_output import AnomalyOutput
from lightning_modules.components.feature_extractor import FrozenFeatures, smooth_map


def positional_encoding(channels: int, height: int, width: int) -> torch.Tensor:
    """(channels, H, W) 2D sinusoidal encoding: half the channels encode x, half y (CFlow's ``positionalencoding2d``)."""
    if channels % 4:
        raise ValueError(f"positional encoding channels must be a multiple of 4, got {channels}")
    half = channels // 2
    frequencies = torch.exp(torch.arange(0, half, 2).float() * -(math.log(10000.0) / half))
    x = torch.arange(width).float()[:, None] * frequencies  # (W, half / 2)
    y = torch.arange(height).float()[:, None] * frequencies
    encoding = torch.zeros(channels, height, width)
    encoding[0:half:2] = torch.sin(x).T[:, None, :].expand(-1, height, -1)
    encoding[1:half:2] = torch.cos(x).T[:, None, :].expand(-1, height, -1)
    encoding[half::2] = torch.sin(y).T[:, :, None].expand(-1, -1, width)
    encoding[half + 1 :: 2] = torch.cos(y).T[:, :, None].expand(-1, -1, width)
    return encoding


class ConditionalCoupling(nn.Module):
    """One all-in-one block: affine coupling conditioned on ``condition_dim`` values, global affine, mixing."""

    def __init__(self, dim: int, condition_dim: int, clamp: float = 1.9, seed: int = 0) -> None:
        super().__init__()
        self.split = dim - dim // 2
        hidden = 2 * (self.split + condition_dim)
        self.subnet = nn.Sequential(
            nn.Linear(self.split + condition_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 2 * (dim - self.split)),
        )
        nn.init.zeros_(self.subnet[-1].weight)  # starts as the identity
        nn.init.zeros_(self.subnet[-1].bias)
        self.clamp = clamp
        self.global_scale = nn.Parameter(torch.full((dim,), math.log(math.e - 1)))  # softplus -> 1
        self.global_offset = nn.Parameter(torch.zeros(dim))
        generator = torch.Generator().manual_seed(seed)
        mixing, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator))
        self.register_buffer("mixing", mixing)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, log|det J|) for x (N, dim), condition (N, condition_dim)."""
        kept, changed = x[:, : self.split], x[:, self.split :]
        log_scale, shift = self.subnet(torch.cat([kept, condition], dim=1)).chunk(2, dim=1)
        log_scale = self.clamp * torch.tanh(log_scale / self.clamp)  # soft clamp (FrEIA's atan-like guard)
        changed = changed * torch.exp(log_scale) + shift
        scale = F.softplus(self.global_scale)
        y = torch.cat([kept, changed], dim=1) * scale + self.global_offset
        log_det = log_scale.sum(1) + torch.log(scale).sum()
        return y @ self.mixing, log_det  # an orthogonal mixing has |det| = 1


class ConditionalFlow(nn.Module):
    """``blocks`` coupling blocks; ``log_likelihood`` per dimension of each input vector."""

    def __init__(self, dim: int, condition_dim: int, blocks: int = 8, clamp: float = 1.9) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            ConditionalCoupling(dim, condition_dim, clamp, seed=i) for i in range(blocks)
        )
        self.dim = dim

    def log_likelihood(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        log_det = torch.zeros(len(x), device=x.device)
        for block in self.blocks:
            x, block_log_det = block(x, condition)
            log_det = log_det + block_log_det
        gaussian = -0.5 * (x**2).sum(1) - 0.5 * self.dim * math.log(2 * math.pi)
        return (gaussian + log_det) / self.dim


class CFlowNet(nn.Module):
    """Frozen encoder + one conditional flow per scale."""

    def __init__(
        self,
        backbone: str = "resnet18",
        layers: Sequence[int] = (1, 2, 3),
        pretrained: bool = True,
        pretrained_path: str | None = None,
        condition_dim: int = 128,
        blocks: int = 8,
        clamp: float = 1.9,
        blur_sigma: float = 4.0,
    ) -> None:
        super().__init__()
        self.encoder = FrozenFeatures(backbone, layers, pretrained, pretrained_path)
        self.flows = nn.ModuleList(
            ConditionalFlow(c, condition_dim, blocks, clamp) for c in self.encoder.channels
        )
        self.condition_dim, self.blur_sigma = condition_dim, blur_sigma
        # per scale, the highest log-likelihood seen on training images: the reference of the probabilities
        self.register_buffer("reference", torch.zeros(len(self.flows)))

    def vectors(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) features -> (B*H*W, C) vectors and their (B*H*W, P) position conditions."""
        b, c, h, w = features.shape
        encoding = positional_encoding(self.condition_dim, h, w).to(features)
        vectors = features.permute(0, 2, 3, 1).reshape(-1, c)
        conditions = (
            encoding.permute(1, 2, 0).reshape(1, h * w, -1).expand(b, -1, -1).reshape(-1, self.condition_dim)
        )
        return vectors, conditions

    def log_likelihoods(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Per scale, (B, H_l, W_l) log-likelihood per dimension of every feature vector."""
        maps = []
        for features, flow in zip(self.encoder(images), self.flows, strict=True):
            vectors, conditions = self.vectors(features.float())
            b, _, h, w = features.shape
            maps.append(flow.log_likelihood(vectors, conditions).reshape(b, h, w))
        return maps

    def anomaly_map(self, images: torch.Tensor) -> AnomalyOutput:
        size = images.shape[-2:]
        total = torch.zeros(len(images), 1, *size, device=images.device)
        for scale, likelihood in enumerate(self.log_likelihoods(images)):
            probability = torch.exp((likelihood - self.reference[scale]).clamp(max=0))[:, None]
            total = total + F.interpolate(probability, size=size, mode="bilinear", align_corners=False)
        maps = smooth_map(len(self.flows) - total, size, self.blur_sigma)
        return AnomalyOutput(anomaly_map=maps, pred_score=maps.flatten(1).amax(1))
