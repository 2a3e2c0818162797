"""Style Latent Flows networks (Choi et al., CVPR 2024).

Stage 1, as the official code: :class:`LatentDropout` -> BatchNorm1d over the time steps -> bidirectional 2-layer
GRU with a learnable initial state; E_style = its four final hidden states concatenated (:class:`StyleGRU`), and
the residual head (:class:`StyleHead`). Stage 2, as the paper describes it: a 3D-CNN content branch
(:class:`ContentBranch`, torchvision's video ResNets by name), the style attention module (:class:`StyleAttention`:
content tokens attend to E_style tokens, zero-initialized output, residual add) and the temporal transformer
encoder (:class:`TemporalTransformer`) with one output logit.
"""

from __future__ import annotations

import itertools
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


class LatentDropout(nn.Module):
    """Drops latent dimensions with one Bernoulli mask per call, shared by the batch and every frame. The mask is
    drawn on the first half of the width and tiled, so dimensions d and d + D/2 are dropped together (with
    18 x 512 codes: layer l with layer l + 9), and kept values are scaled by 1 / (1 - p)."""

    def __init__(self, p: float = 0.2) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        half = x.shape[-1] // 2
        keep = torch.bernoulli(torch.full((half,), 1 - self.p, device=x.device, dtype=x.dtype))
        mask = torch.cat([keep, keep, keep.new_ones(x.shape[-1] - 2 * half)])
        return x * mask / (1 - self.p)


class StyleGRU(nn.Module):
    """Latent differences (B, steps, D) -> E_style (B, 2 * layers * hidden): the final hidden state of every layer
    and direction of a bidirectional GRU whose initial state is learnt, starting from N(0, 1) as the official code's
    (``initial_state: zeros`` starts it at zero)."""

    def __init__(
        self,
        input_dim: int,
        steps: int = 31,
        hidden: int = 4096,
        layers: int = 2,
        dropout: float = 0.1,
        latent_dropout: float = 0.2,
        initial_state: Literal["normal", "zeros"] = "normal",
    ) -> None:
        super().__init__()
        self.latent_dropout = LatentDropout(latent_dropout)
        self.norm = nn.BatchNorm1d(steps)  # the time steps are the channels
        self.gru = nn.GRU(input_dim, hidden, layers, batch_first=True, bidirectional=True, dropout=dropout)
        if initial_state not in ("normal", "zeros"):
            raise ValueError(f"StyleGRU initial_state must be normal or zeros, got {initial_state!r}")
        start = torch.randn if initial_state == "normal" else torch.zeros
        self.initial_state = nn.Parameter(start(2 * layers, 1, hidden))
        self.steps, self.output_dim = steps, 2 * layers * hidden

    def forward(self, deltas: torch.Tensor) -> torch.Tensor:
        if deltas.shape[1] != self.steps:
            raise ValueError(
                f"StyleGRU was built for {self.steps} steps (clip_len {self.steps + 1}), got {deltas.shape[1]}"
            )
        x = self.norm(self.latent_dropout(deltas.float()))
        _, final = self.gru(x, self.initial_state.expand(-1, len(x), -1).contiguous())
        return rearrange(final, "states batch hidden -> batch (states hidden)")


class StyleHead(nn.Module):
    """Stage-1 classifier on E_style: dropout, residual feed-forward (E -> hidden -> E), dropout, one logit."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.ffn = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(dim, 1)

    def forward(self, style: torch.Tensor) -> torch.Tensor:
        x = self.dropout(style)
        x = self.dropout(x + self.ffn(x))
        return self.out(x).squeeze(-1)


class Small3DNet(nn.Module):
    """A four-stage 3D CNN (width w, 2w, 4w, 8w; space /16, time /4) for CPU demos on small frames."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = [3, width, 2 * width, 4 * width, 8 * width]
        strides = [(1, 2, 2), (2, 2, 2), (2, 2, 2), (1, 2, 2)]
        for (a, b), stride in zip(itertools.pairwise(channels), strides, strict=True):
            layers += [nn.Conv3d(a, b, 3, stride, 1, bias=False), nn.BatchNorm3d(b), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.out_channels = channels[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class ContentBranch(nn.Module):
    """Frames (B, T, 3, S, S) in [0, 1] -> content tokens (B, T', C): a 3D CNN without its pooling and classifier,
    then spatial average pooling (one token per remaining time step). ``name``: torchvision's ``r3d_18``,
    ``mc3_18``, ``r2plus1d_18`` (Kinetics-400 weights from ``weights_path`` when given), or ``small3d``."""

    def __init__(self, name: str = "r3d_18", weights_path: str | None = None, width: int = 16) -> None:
        super().__init__()
        if name == "small3d":
            self.net: nn.Module = Small3DNet(width)
            self.out_channels = self.net.out_channels
        else:
            from torchvision.models import video

            if name not in ("r3d_18", "mc3_18", "r2plus1d_18"):
                raise ValueError(
                    f"content_backbone must be r3d_18, mc3_18, r2plus1d_18 or small3d, got {name!r}"
                )
            model = getattr(video, name)(weights=None)
            if weights_path:
                model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
            self.net = nn.Sequential(model.stem, model.layer1, model.layer2, model.layer3, model.layer4)
            self.out_channels = 512
        self.register_buffer("mean", torch.tensor(KINETICS_MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(KINETICS_STD).view(1, 3, 1, 1, 1), persistent=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = (rearrange(frames, "b t c h w -> b c t h w") - self.mean) / self.std
        return rearrange(self.net(x).mean((3, 4)), "b c t -> b t c")


class StyleAttention(nn.Module):
    """x = x_c + Out(softmax(Q(x_c) K(s)^T / sqrt(d)) V(s)): content tokens query the style tokens. The output
    projection starts at zero, so at initialization the module adds exactly nothing."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        attended = F.scaled_dot_product_attention(self.query(content), self.key(style), self.value(style))
        return content + self.out(attended)


class TemporalTransformer(nn.Module):
    """CLS token + learnt positions, embedding dropout, a pre-norm transformer encoder, one logit from the CLS."""

    def __init__(
        self,
        dim: int,
        max_tokens: int,
        depth: int = 6,
        heads: int = 16,
        mlp_dim: int = 2048,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.positions = nn.Parameter(torch.randn(1, max_tokens + 1, dim) * 0.02)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            dim, heads, mlp_dim, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.shape[1] + 1 > self.positions.shape[1]:
            raise ValueError(
                f"{tokens.shape[1]} content tokens, the transformer has positions for {self.positions.shape[1] - 1}"
            )
        x = torch.cat([self.cls.expand(len(tokens), -1, -1), tokens], dim=1)
        x = self.dropout(x + self.positions[:, : x.shape[1]])
        return self.head(self.norm(self.encoder(x)[:, 0])).squeeze(-1)
