"""Vector quantization as TVQ-VAE and the variance-aware generator of text-guided generation both use it: the
multi-hot quantizer (a vector quantized onto its ``top_n`` nearest codes at once) and the VQ-VAE paper's residual
block their encoders and decoders are made of. Plain torch; shared here so no method folder imports another.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResidualBlock(nn.Module):
    """ReLU, 3x3 conv, BN, ReLU, 1x1 conv, BN, plus the input (the VQ-VAE paper's block)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(dim, dim, 3, 1, 1),
            nn.BatchNorm2d(dim),
            nn.ReLU(),
            nn.Conv2d(dim, dim, 1),
            nn.BatchNorm2d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class MultiHotQuantizer(nn.Module):
    """Vector quantization onto the ``top_n`` nearest codes at once: the quantized vector is the sum of their
    embeddings, the assignment a multi-hot row with exactly ``top_n`` ones (TVQ-VAE's "conceptual word").

    Args:
        num_codes: Codebook size (300 in the text model).
        dim: Code width (100).
        top_n: Codes per vector (5).
        commitment: Weight of the encoder's commitment term (0.25).
        soft_multi_hot: Weigh the ``top_n`` codes by L2-normalized inverse distance instead of 1 (the official
            code computes these weights and then overwrites them with ones: off by default).
        codebook_init: ``data`` (ours): at the first training batch each code becomes a random latent ÷
            ``top_n`` (so a sum of ``top_n`` codes has a latent's scale); ``normal`` N(0, 0.02), what the
            released code really starts from (``from_pretrained`` re-initializes every non-BERT layer); or
            ``uniform`` U(-1, 1), what it writes. On the stand-in both official ones collapse within a few
            steps: the same 5 codes are the nearest to every token (perplexity 5.0) for good.
        dead_code_restart: Codes no token chose over ``restart_window`` training steps are moved to random
            latents of the batch ÷ ``top_n`` (Jukebox's remedy; ours, off in the official code).
    """

    def __init__(
        self,
        num_codes: int = 300,
        dim: int = 100,
        top_n: int = 5,
        commitment: float = 0.25,
        soft_multi_hot: bool = False,
        codebook_init: str = "data",
        dead_code_restart: bool = True,
        restart_window: int = 20,
    ) -> None:
        super().__init__()
        if not 1 <= top_n <= num_codes:
            raise ValueError(f"top_n must be in [1, num_codes={num_codes}], got {top_n}")
        if codebook_init not in ("data", "normal", "uniform"):
            raise ValueError(f"codebook_init must be data, normal or uniform, got {codebook_init!r}")
        codebook = torch.empty(num_codes, dim)
        self.codebook = nn.Parameter(
            codebook.uniform_(-1.0, 1.0) if codebook_init == "uniform" else codebook.normal_(0.0, 0.02)
        )
        self.top_n, self.commitment, self.soft_multi_hot = top_n, commitment, soft_multi_hot
        self.dead_code_restart, self.restart_window = dead_code_restart, restart_window
        self.register_buffer("initialized", torch.tensor(codebook_init != "data"))
        self.register_buffer("steps_unused", torch.zeros(num_codes, dtype=torch.long))

    @torch.no_grad()
    def _reset_codes(self, codes: torch.Tensor, z: torch.Tensor) -> None:
        picks = torch.randint(len(z), (len(codes),), device=z.device)
        noise = 1e-3 * torch.randn(len(codes), z.shape[1], device=z.device)
        self.codebook.data[codes] = (z[picks].float() + noise) / self.top_n
        self.steps_unused[codes] = 0

    @property
    def num_codes(self) -> int:
        return self.codebook.shape[0]

    def assign(self, z: torch.Tensor) -> torch.Tensor:
        """(N, num_codes) multi-hot rows: ones (or soft weights) at each vector's ``top_n`` nearest codes."""
        distances = torch.cdist(z.float(), self.codebook.float()).square()
        nearest, codes = torch.topk(distances, self.top_n, dim=1, largest=False)
        weights = (
            F.normalize(1.0 / nearest.clamp_min(1e-12), dim=1)
            if self.soft_multi_hot
            else torch.ones_like(nearest)
        )
        return torch.zeros_like(distances).scatter_(1, codes, weights)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(straight-through quantized z, VQ loss, multi-hot assignments, codebook perplexity)."""
        if self.training and len(z) and not self.initialized:
            self._reset_codes(torch.arange(self.num_codes, device=z.device), z.detach())
            self.initialized.fill_(True)
        encodings = self.assign(z.detach())
        if self.training and self.dead_code_restart and len(z):
            used = encodings.sum(0) > 0
            self.steps_unused.add_(1).masked_fill_(used, 0)
            dead = torch.nonzero(self.steps_unused >= self.restart_window).flatten()
            if len(dead):
                self._reset_codes(dead, z.detach())
        quantized = encodings @ self.codebook
        loss = F.mse_loss(quantized, z.detach()) + self.commitment * F.mse_loss(quantized.detach(), z)
        usage = encodings.mean(0) / self.top_n
        perplexity = torch.exp(-(usage * torch.log(usage + 1e-10)).sum())
        return z + (quantized - z).detach(), loss, encodings, perplexity
