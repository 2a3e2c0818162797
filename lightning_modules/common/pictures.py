"""Turning tensors into [0, 1] pictures for TensorBoard: spectra and signed maps."""

from __future__ import annotations

import torch

from lightning_modules.common.spectral import log_magnitude_spectrum


def spectrum_picture(images: torch.Tensor) -> torch.Tensor:
    """Channel-mean log-magnitude spectrum (DC at the centre), min-max scaled per image, as 3 channels."""
    spectrum = log_magnitude_spectrum(images).mean(dim=1, keepdim=True)
    low = spectrum.amin(dim=(-2, -1), keepdim=True)
    high = spectrum.amax(dim=(-2, -1), keepdim=True)
    return ((spectrum - low) / (high - low).clamp_min(1e-12)).expand(-1, 3, -1, -1)


def signed_picture(maps: torch.Tensor) -> torch.Tensor:
    """A signed map shown around grey: 0 -> 0.5, the image's largest magnitude -> 0 or 1."""
    peak = maps.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
    return 0.5 + 0.5 * maps / peak
