"""Turning tensors into [0, 1] pictures for TensorBoard: spectra and signed maps."""

from __future__ import annotations

import torch

from lightning_modules.components.spectral import log_magnitude_spectrum


def spectrum_picture(images: torch.Tensor) -> torch.Tensor:
    """Channel-mean log-magnitude spectrum (DC at the center), min-max scaled per image, as 3 channels."""
    spectrum = log_magnitude_spectrum(images).mean(dim=1, keepdim=True)
    low = spectrum.amin(dim=(-2, -1), keepdim=True)
    high = spectrum.amax(dim=(-2, -1), keepdim=True)
    return ((spectrum - low) / (high - low).clamp_min(1e-12)).expand(-1, 3, -1, -1)


def signed_picture(maps: torch.Tensor) -> torch.Tensor:
    """A signed map shown around grey: 0 -> 0.5, the image's largest magnitude -> 0 or 1."""
    peak = maps.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
    return 0.5 + 0.5 * maps / peak


def reliability_diagram(
    confidences: torch.Tensor, correct: torch.Tensor, n_bins: int = 15, size: int = 150
) -> torch.Tensor:
    """A (3, size, size) reliability diagram: one bar per equal-width confidence bin, its height the bin's
    accuracy (blue), the gap to the bin's mean confidence in red, the ideal diagonal in grey; white background.
    Empty bins have no bar. Origin at the bottom left."""
    picture = torch.ones(3, size, size)
    edges = torch.linspace(0, 1, n_bins + 1)
    index = torch.bucketize(confidences.float().cpu(), edges[1:-1])
    width = size // n_bins
    for b in range(n_bins):
        members = index == b
        if not members.any():
            continue
        accuracy = float(correct.float().cpu()[members].mean())
        confidence = float(confidences.float().cpu()[members].mean())
        left, right = b * width, (b + 1) * width - 1
        top_acc = size - round(accuracy * size)
        top_conf = size - round(confidence * size)
        picture[:, top_acc:, left:right] = torch.tensor([0.2, 0.4, 0.9])[:, None, None]
        low, high = sorted((top_acc, top_conf))
        picture[:, low:high, left:right] = torch.tensor([0.9, 0.2, 0.2])[:, None, None]
    diagonal = torch.arange(size)
    picture[:, size - 1 - diagonal, diagonal] = 0.5
    return picture


def heatmap_picture(matrix: torch.Tensor, cell: int = 8) -> torch.Tensor:
    """A (rows, columns) matrix as a (3, rows*cell, columns*cell) picture: white at its minimum, dark blue at its
    maximum (min-max scaled; a constant matrix is all white)."""
    values = matrix.detach().float().cpu()
    low, high = values.min(), values.max()
    scaled = (values - low) / (high - low) if high > low else torch.zeros_like(values)
    white, blue = torch.ones(3), torch.tensor([0.05, 0.15, 0.55])
    colors = white[:, None, None] + (blue - white)[:, None, None] * scaled[None]
    return colors.repeat_interleave(cell, dim=1).repeat_interleave(cell, dim=2)


def upsampled_maps(maps: torch.Tensor, grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """Maps over a patch grid (B, P) as (B, 3, H, W) pictures, each min-max scaled, nearest-neighbor up-sampled."""
    pictures = maps.detach().float().reshape(-1, 1, *grid)
    low = pictures.amin(dim=(-2, -1), keepdim=True)
    high = pictures.amax(dim=(-2, -1), keepdim=True)
    pictures = (pictures - low) / (high - low).clamp_min(1e-12)
    return torch.nn.functional.interpolate(pictures, size=size, mode="nearest").expand(-1, 3, -1, -1)


def heat_picture(maps: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """(B, 1, H, W) scores as (B, 3, H, W) colors on one fixed scale: ``low`` dark blue, through cyan and
    yellow, to ``high`` dark red (a jet-like ramp), so pictures of different images compare."""
    x = ((maps.detach().float() - low) / max(high - low, 1e-12)).clamp(0, 1)
    channels = [(1.5 - (4 * x - center).abs()).clamp(0, 1) for center in (3.0, 2.0, 1.0)]  # red, green, blue
    return torch.cat(channels, dim=1)
