"""FingerprintNet (Jeong et al., ECCV 2022): autoencoders that synthesize GAN-like fingerprints, and a detector
that reads the frequency representation. No code was released; the design is our reading (README.md):

* AE_k (k = 1..4): k stride-2 convolutions down, 2 residual blocks, k transposed convolutions up (kernel 4,
  stride 2, padding 1: the up-sampling type that leaves periodic spectral peaks), 3x3 convolution + tanh.
  Trained on real images only; its reconstruction carries the up-sampling fingerprint of depth k.
* Detector input: the per-channel log-magnitude spectrum ``log(|shift(F(x - mean x))| + 1e-6)``, standardized
  per image (or the spectrum of a high-pass residual, the image, or image and spectrum together).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.components.backbones import Normalize
from lightning_modules.components.spectral import log_magnitude_spectrum

Representation = Literal["spectrum", "residual_spectrum", "image", "both"]


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class FingerprintAutoencoder(nn.Module):
    """AE_k: ``stages`` stride-2 convolutions, 2 residual blocks, ``stages`` transposed convolutions, conv + tanh.

    Maps [0, 1] images to [0, 1] reconstructions of the same size (sizes divisible by 2**stages).
    """

    def __init__(self, stages: int, width: int = 256, channels: int = 3) -> None:
        super().__init__()
        if stages < 1:
            raise ValueError(f"an autoencoder needs at least one up-sampling stage, got {stages}")
        self.stages = stages
        widths = [max(width // 2 ** (stages - i), 16) for i in range(stages)] + [width]
        down: list[nn.Module] = [nn.Conv2d(channels, widths[0], 3, padding=1), nn.ReLU(inplace=True)]
        for i in range(stages):
            down += [
                nn.Conv2d(widths[i], widths[i + 1], 4, stride=2, padding=1),
                nn.BatchNorm2d(widths[i + 1]),
                nn.ReLU(inplace=True),
            ]
        up: list[nn.Module] = []
        for i in reversed(range(stages)):
            up += [
                nn.ConvTranspose2d(widths[i + 1], widths[i], 4, stride=2, padding=1),
                nn.BatchNorm2d(widths[i]),
                nn.ReLU(inplace=True),
            ]
        self.encoder = nn.Sequential(*down)
        self.bottleneck = nn.Sequential(_Residual(width), _Residual(width))
        self.decoder = nn.Sequential(*up, nn.Conv2d(widths[0], channels, 3, padding=1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = 2**self.stages
        if x.shape[-1] % factor or x.shape[-2] % factor:
            raise ValueError(
                f"AE with {self.stages} stages needs sizes divisible by {factor}, got {tuple(x.shape[-2:])}"
            )
        out = self.decoder(self.bottleneck(self.encoder(x * 2.0 - 1.0)))
        return (out + 1.0) / 2.0


class FingerprintGenerator(nn.Module):
    """The family of autoencoders, one per depth in ``stages``; makes a pseudo-fake per image.

    ``forward(x, choice)`` runs ``AE_{stages[choice[i]]}`` on image i, each autoencoder once on its share of the
    batch, so the cost is one autoencoder pass per batch whatever the number of depths.
    """

    def __init__(self, stages: list[int] = (1, 2, 3, 4), width: int = 256) -> None:  # type: ignore[assignment]
        super().__init__()
        self.stages = list(stages)
        self.autoencoders = nn.ModuleList(FingerprintAutoencoder(k, width) for k in self.stages)

    def forward(self, x: torch.Tensor, choice: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(x)
        for index, autoencoder in enumerate(self.autoencoders):
            members = choice == index
            if members.any():
                out[members] = autoencoder(x[members]).to(out.dtype)
        return out


def high_pass_residual(x: torch.Tensor, kernel_size: int = 5, sigma: float = 1.0) -> torch.Tensor:
    """``x - GaussianBlur(x)``: the image's fine detail, where up-sampling fingerprints live."""
    coords = torch.arange(kernel_size, dtype=torch.float32, device=x.device) - (kernel_size - 1) / 2
    taps = torch.exp(-(coords**2) / (2 * sigma**2))
    taps = taps / taps.sum()
    kernel = torch.outer(taps, taps).expand(x.shape[1], 1, kernel_size, kernel_size).to(x.dtype)
    blurred = F.conv2d(F.pad(x, [kernel_size // 2] * 4, mode="reflect"), kernel, groups=x.shape[1])
    return x - blurred


def standardized_log_spectrum(x: torch.Tensor) -> torch.Tensor:
    """Per-channel log-magnitude spectrum, standardized per image to zero mean and unit variance (float32)."""
    spectrum = log_magnitude_spectrum(x)
    mean = spectrum.mean(dim=(1, 2, 3), keepdim=True)
    std = spectrum.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    return (spectrum - mean) / std


def input_channels(representation: Representation) -> int:
    """Channels of the detector's input: ``both`` stacks the image and its spectrum."""
    return 6 if representation == "both" else 3


class DetectorInput(nn.Module):
    """The detector's view of an image: its spectrum (default), the spectrum of its residual, the image, or both.

    Images are normalized (``normalize``: the detector backbone's own statistics, ImageNet's when not given) and
    spectra standardized here; ``both`` stacks them as 6 channels.
    """

    def __init__(
        self, representation: Representation = "spectrum", normalize: nn.Module | None = None
    ) -> None:
        super().__init__()
        if representation not in ("spectrum", "residual_spectrum", "image", "both"):
            raise ValueError(
                f"representation must be spectrum, residual_spectrum, image or both, got {representation!r}"
            )
        self.representation = representation
        self.normalize = normalize if normalize is not None else Normalize()

    @property
    def channels(self) -> int:
        return input_channels(self.representation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.representation == "spectrum":
            return standardized_log_spectrum(x)
        if self.representation == "residual_spectrum":
            return standardized_log_spectrum(high_pass_residual(x.float()))
        if self.representation == "image":
            return self.normalize(x)
        return torch.cat([self.normalize(x.float()), standardized_log_spectrum(x)], dim=1)
