"""Small up-sampling "generator families" whose only difference is how they up-sample.

A stand-in fake is a real crop, down-sampled by 2**stages with area averaging, then brought back to full size by
``stages`` up-sampling steps of one family. Each family's operator is a fixed, seeded perturbation of an
interpolation kernel, so its output is image-like (content stays real) while carrying the family's periodic
fingerprint, the way a GAN's up-sampling layers leave theirs. Two families differ in operator (transposed
convolution, nearest + convolution, bilinear + convolution, pixel shuffle), kernel draw and number of stages;
an anti-artifact family additionally smooths its spectrum so the up-sampling replicas are weak.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class UpsamplingFamily:
    """One fake-image family: ``operator`` applied ``stages`` times; ``seed`` draws its kernel perturbation."""

    name: str
    operator: str  # transconv | nearest_conv | bilinear_conv | pixelshuffle
    stages: int
    seed: int
    strength: float = 0.15  # standard deviation of the kernel perturbation, relative to the kernel's peak
    smoothing: float = 0.0  # share of the spectrum removed above the source band (anti-artifact generators)

    def __post_init__(self) -> None:
        if self.operator not in _OPERATORS:
            raise ValueError(
                f"unknown up-sampling operator {self.operator!r}; expected one of {sorted(_OPERATORS)}"
            )

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Fake versions of ``images`` (N, 3, H, W) in [0, 1]; H and W must be divisible by 2**stages."""
        factor = 2**self.stages
        if images.shape[-1] % factor or images.shape[-2] % factor:
            raise ValueError(f"{self.name}: image size {tuple(images.shape[-2:])} not divisible by {factor}")
        x = F.avg_pool2d(images, factor)
        generator = torch.Generator().manual_seed(self.seed)
        for _ in range(self.stages):
            x = _OPERATORS[self.operator](x, generator, self.strength)
        if self.smoothing:
            x = _suppress_replicas(x, self.smoothing, factor)
        return x.clamp(0, 1)


def _perturbed(
    kernel: torch.Tensor, channels: int, generator: torch.Generator, strength: float
) -> torch.Tensor:
    """A (C, C, k, k) weight: ``kernel`` on the channel diagonal plus seeded noise on every entry.

    The noise sums to zero over the taps of every (output, input) channel pair: each channel keeps its mass
    and no channel leaks a constant into another, so brightness and color are kept exactly while the shape of
    the filter, the family's fingerprint, changes.
    """
    k = kernel.shape[-1]
    weight = torch.zeros(channels, channels, k, k)
    for c in range(channels):
        weight[c, c] = kernel
    noise = torch.randn(channels, channels, k, k, generator=generator) * strength * kernel.abs().max()
    return weight + noise - noise.mean(dim=(2, 3), keepdim=True)


def _transconv(x: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 4.0
    # bilinear taps: each output pixel receives 4 of the 16 taps, of total mass 1 (before the perturbation)
    weight = _perturbed(torch.outer(taps, taps), x.shape[1], generator, strength)
    return F.conv_transpose2d(x, weight.transpose(0, 1), stride=2, padding=1)


def _conv_after(x: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    kernel = torch.zeros(3, 3)
    kernel[1, 1] = 1.0
    weight = _perturbed(kernel, x.shape[1], generator, strength)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), weight)


def _nearest_conv(x: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    return _conv_after(F.interpolate(x, scale_factor=2, mode="nearest"), generator, strength)


def _bilinear_conv(x: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    return _conv_after(up, generator, strength)


def _pixelshuffle(x: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    channels = x.shape[1]
    kernel = torch.zeros(3, 3)
    kernel[1, 1] = 1.0
    # one perturbed copy-kernel per sub-pixel position: four slightly different filters tile the output
    weight = torch.cat([_perturbed(kernel, channels, generator, strength) for _ in range(4)])
    weight = weight.view(4, channels, channels, 3, 3).transpose(0, 1).reshape(4 * channels, channels, 3, 3)
    return F.pixel_shuffle(F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), weight), 2)


def _suppress_replicas(x: torch.Tensor, amount: float, factor: int) -> torch.Tensor:
    """Attenuate the spectrum outside the band the low-resolution source had, where up-sampling puts its
    replicas: what spectrally regularized ("anti-artifact") generators do to hide their fingerprint."""
    height, width = x.shape[-2:]
    fy = torch.fft.fftfreq(height).abs()[:, None]
    fx = torch.fft.fftfreq(width).abs()[None, :]
    edge = 0.5 / factor  # the source's Nyquist frequency, in cycles per output pixel
    beyond = torch.clamp((torch.maximum(fy, fx) - 0.8 * edge) / (0.4 * edge), 0.0, 1.0)
    window = 1.0 - amount * beyond
    return torch.fft.ifft2(torch.fft.fft2(x) * window).real


_OPERATORS = {
    "transconv": _transconv,
    "nearest_conv": _nearest_conv,
    "bilinear_conv": _bilinear_conv,
    "pixelshuffle": _pixelshuffle,
}


def fake_images(family: UpsamplingFamily, reals: np.ndarray, batch: int = 256) -> np.ndarray:
    """Apply ``family`` to (N, H, W, 3) uint8 crops and return uint8 fakes of the same shape."""
    out = np.empty_like(reals)
    with torch.no_grad():
        for start in range(0, len(reals), batch):
            x = torch.from_numpy(reals[start : start + batch]).permute(0, 3, 1, 2).float() / 255.0
            y = family(x)
            out[start : start + batch] = (y * 255.0).round().byte().permute(0, 2, 3, 1).numpy()
    return out
