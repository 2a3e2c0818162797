"""TVQ-VAE for images (image model): the image VQ-VAE whose code map is a document, the
bag-of-codes front end of the topic model, and the gated PixelCNN prior conditioned on a topic embedding.
No Lightning here; the topic model itself is :class:`~lightning_modules.tvqvae.networks.ProdLDA`, reused with
:class:`CodeMapFront` as its first layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.components.vector_quantization import MultiHotQuantizer, ResidualBlock


class ImageVQVAE(nn.Module):
    """Conv(4, s2) -> BN -> ReLU -> Conv(4, s2) -> 2 residual blocks -> one code per position (``num_codes``,
    512 in the paper) -> the mirror with transposed convolutions -> tanh. A 32 x 32 image is an 8 x 8 code map.
    Inputs and outputs are in [-1, 1].
    """

    def __init__(
        self,
        channels: int = 3,
        dim: int = 256,
        num_codes: int = 512,
        commitment: float = 0.25,
        codebook_init: str = "data",
    ) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, dim, 4, 2, 1),
            nn.BatchNorm2d(dim),
            nn.ReLU(),
            nn.Conv2d(dim, dim, 4, 2, 1),
            ResidualBlock(dim),
            ResidualBlock(dim),
        )
        self.quantizer = MultiHotQuantizer(
            num_codes, dim, top_n=1, commitment=commitment, codebook_init=codebook_init
        )
        self.decoder = nn.Sequential(
            ResidualBlock(dim),
            ResidualBlock(dim),
            nn.ReLU(),
            nn.ConvTranspose2d(dim, dim, 4, 2, 1),
            nn.BatchNorm2d(dim),
            nn.ReLU(),
            nn.ConvTranspose2d(dim, channels, 4, 2, 1),
            nn.Tanh(),
        )

    @property
    def num_codes(self) -> int:
        return self.quantizer.num_codes

    def _quantize(self, features: torch.Tensor):
        b, d, h, w = features.shape
        flat = features.permute(0, 2, 3, 1).reshape(-1, d)
        quantized, loss, encodings, perplexity = self.quantizer(flat)
        quantized = quantized.reshape(b, h, w, d).permute(0, 3, 1, 2)
        return quantized, loss, encodings.argmax(1).reshape(b, h, w), perplexity

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        quantized, vq_loss, codes, perplexity = self._quantize(self.encoder(images))
        return {
            "reconstruction": self.decoder(quantized),
            "codes": codes,
            "vq_loss": vq_loss,
            "perplexity": perplexity,
        }

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, h, w) code indices."""
        return self._quantize(self.encoder(images))[2]

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] from (B, h, w) code indices."""
        return self.decoder(self.quantizer.codebook[codes].permute(0, 3, 1, 2))


def code_bag(codes: torch.Tensor, num_codes: int) -> torch.Tensor:
    """(B, num_codes) counts of each code in (B, h, w) code maps: an image's bag of words (h x w of them)."""
    return F.one_hot(codes.flatten(1), num_codes).sum(1).float()


class CodeMapFront(nn.Module):
    """The topic model's first layer for images: Conv2d(num_codes -> width, kernel = the map's side) over the
    one-hot code map, i.e. one linear map of the whole (num_codes, h, w) grid (the official code's Conv2d with kernel h)."""

    def __init__(self, num_codes: int, side: int, width: int = 100) -> None:
        super().__init__()
        self.num_codes = num_codes
        self.conv = nn.Conv2d(num_codes, width, side)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        one_hot = F.one_hot(codes, self.num_codes).permute(0, 3, 1, 2).float()
        return self.conv(one_hot).flatten(1)


class GatedMaskedConv(nn.Module):
    """One gated PixelCNN layer (van den Oord et al., 2016): a vertical stack that sees the rows above, a
    horizontal stack that sees the pixels to the left, gates tanh(a) * sigmoid(b), and a bias-free projection of
    the condition added to both. ``first`` (mask A) also hides the current position itself."""

    def __init__(
        self,
        dim: int,
        condition_dim: int,
        kernel: int = 7,
        first: bool = False,
        condition_init: str = "normal",
    ) -> None:
        super().__init__()
        half = kernel // 2
        self.first = first
        self.vertical = nn.Conv2d(dim, 2 * dim, (half + 1, kernel), padding=(half, half))
        self.horizontal = nn.Conv2d(dim, 2 * dim, (1, half + 1), padding=(0, half))
        self.vertical_to_horizontal = nn.Conv2d(2 * dim, 2 * dim, 1)
        self.horizontal_out = nn.Conv2d(dim, dim, 1)
        self.condition = nn.Linear(condition_dim, 2 * dim, bias=False)
        if condition_init == "normal":  # the official code's projection is an nn.Embedding's weight: N(0, 1)
            nn.init.normal_(self.condition.weight, 0.0, 1.0)
        elif condition_init != "linear":
            raise ValueError(f"condition_init must be normal or linear, got {condition_init!r}")

    @staticmethod
    def _gate(x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)

    def forward(self, vertical: torch.Tensor, horizontal: torch.Tensor, condition: torch.Tensor):
        h, w = vertical.shape[-2:]
        v_weight, h_weight = self.vertical.weight, self.horizontal.weight
        if self.first:  # mask A: no row of the current position, no current column in the row
            v_weight = torch.cat([v_weight[:, :, :-1], torch.zeros_like(v_weight[:, :, -1:])], dim=2)
            h_weight = torch.cat([h_weight[..., :-1], torch.zeros_like(h_weight[..., -1:])], dim=3)
        cond = self.condition(condition)[:, :, None, None]
        v = F.conv2d(vertical, v_weight, self.vertical.bias, padding=self.vertical.padding)[:, :, :h]
        hz = F.conv2d(horizontal, h_weight, self.horizontal.bias, padding=self.horizontal.padding)[..., :w]
        vertical_out = self._gate(v + cond)
        # the vertical features at row i reach the horizontal stack: since mask A they only see rows above i
        out = self.horizontal_out(self._gate(self.vertical_to_horizontal(v) + hz + cond))
        return vertical_out, out if self.first else out + horizontal


class GatedPixelCNN(nn.Module):
    """Autoregressive prior over a code map, conditioned on a vector (TVQ-VAE: the topic embedding θβ·codebook).

    ``layers`` gated layers of width ``dim`` (paper: 15 and 64), the first with mask A; logits over
    ``num_codes`` per position. Position (i, j) depends only on positions before it in raster order. The
    condition's projections start N(0, 1) as the official code's (``condition_init: linear``: nn.Linear's
    default, about 27 times smaller for a 256-d condition).
    """

    def __init__(
        self,
        num_codes: int = 512,
        dim: int = 64,
        layers: int = 15,
        condition_dim: int = 256,
        kernel: int = 7,
        condition_init: str = "normal",
    ) -> None:
        super().__init__()
        self.num_codes = num_codes
        self.embedding = nn.Embedding(num_codes, dim)
        self.layers = nn.ModuleList(
            GatedMaskedConv(dim, condition_dim, kernel if i == 0 else 3, i == 0, condition_init)
            for i in range(layers)
        )
        self.head = nn.Sequential(nn.Conv2d(dim, 512, 1), nn.ReLU(), nn.Conv2d(512, num_codes, 1))

    def forward(self, codes: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """(B, num_codes, h, w) logits of each position given the earlier ones."""
        x = self.embedding(codes).permute(0, 3, 1, 2)
        vertical, horizontal = x, x
        for layer in self.layers:
            vertical, horizontal = layer(vertical, horizontal, condition)
        return self.head(horizontal)

    @torch.no_grad()
    def sample(
        self, condition: torch.Tensor, shape: tuple[int, int], temperature: float = 1.0
    ) -> torch.Tensor:
        """(B, h, w) code maps drawn position by position."""
        codes = torch.zeros(len(condition), *shape, dtype=torch.long, device=condition.device)
        for i in range(shape[0]):
            for j in range(shape[1]):
                logits = self.forward(codes, condition)[:, :, i, j] / temperature
                codes[:, i, j] = torch.multinomial(F.softmax(logits.float(), dim=1), 1).squeeze(1)
        return codes
