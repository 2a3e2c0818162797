"""Spectral operations shared by the frequency-aware detectors (BiHPF, FrePGAN, FingerprintNet).

FFTs run in float32 with autocast off: half-precision FFTs only accept power-of-two sizes and lose the small
high-frequency energy these methods look at.
"""

from __future__ import annotations

import torch


def radial_distance(height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """(H, W) distance of each index from the center (H/2, W/2), divided by the largest such distance.

    With ``fftshift`` this is the normalized frequency radius (DC at the center is 0, the corner is 1); on a
    pixel grid it is the normalized distance from the image center.
    """
    rows = torch.arange(height, dtype=torch.float32, device=device) - height / 2
    cols = torch.arange(width, dtype=torch.float32, device=device) - width / 2
    distance = torch.sqrt(rows[:, None] ** 2 + cols[None, :] ** 2)
    return distance / distance.max().clamp_min(1e-12)


def fft2_shifted(x: torch.Tensor) -> torch.Tensor:
    """Per-channel 2-D FFT of the last two dimensions in float32, DC moved to the center."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        return torch.fft.fftshift(torch.fft.fft2(x.float()), dim=(-2, -1))


def ifft2_shifted_real(spectrum: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`fft2_shifted`, keeping the real part (the imaginary residue is round-off)."""
    with torch.autocast(device_type=spectrum.device.type, enabled=False):
        return torch.fft.ifft2(torch.fft.ifftshift(spectrum, dim=(-2, -1))).real


def log_magnitude_spectrum(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``log(|shift(F(x - mean x))| + eps)`` per channel, float32: the usual picture of a GAN fingerprint."""
    x = x.float()
    return torch.log(fft2_shifted(x - x.mean(dim=(-2, -1), keepdim=True)).abs() + eps)
