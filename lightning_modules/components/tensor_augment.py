"""Wang et al.'s blur and JPEG augmentation on a batch of tensors, for images a module makes itself.

The DataModule augments files as it reads them; a method that synthesizes training images inside its step
(FingerprintNet's pseudo-fakes) must augment after that, or the two classes would differ in how they were
augmented and the detector would learn the difference (FingerprintNet's blur shortcut).
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2.functional import gaussian_blur


def random_blur(
    images: torch.Tensor, prob: float, sigma: tuple[float, float], generator: torch.Generator | None = None
) -> torch.Tensor:
    """Blur each image with probability ``prob`` by a Gaussian of sigma ~ U(sigma) (sigma 0 leaves it)."""
    out = images.clone()
    chosen = torch.rand(len(images), generator=generator) < prob
    sigmas = torch.empty(len(images)).uniform_(*sigma, generator=generator)
    for index in chosen.nonzero().flatten().tolist():
        s = float(sigmas[index])
        if s > 0:
            size = 2 * math.ceil(3 * s) + 1
            out[index] = gaussian_blur(images[index], kernel_size=[size, size], sigma=[s, s])
    return out


def jpeg_roundtrip(image: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode a [0, 1] (3, H, W) image as JPEG at ``quality`` with PIL and decode it again (on the CPU)."""
    pixels = (image.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(quality))
    decoded = np.asarray(Image.open(buffer).convert("RGB"))
    return torch.from_numpy(decoded.copy()).permute(2, 0, 1).to(image.device, image.dtype) / 255.0


def random_jpeg(
    images: torch.Tensor, prob: float, quality: tuple[int, int], generator: torch.Generator | None = None
) -> torch.Tensor:
    """Re-compress each image with probability ``prob`` at a quality ~ U{quality}."""
    out = images.clone()
    chosen = torch.rand(len(images), generator=generator) < prob
    qualities = torch.randint(quality[0], quality[1] + 1, (len(images),), generator=generator)
    for index in chosen.nonzero().flatten().tolist():
        out[index] = jpeg_roundtrip(images[index], int(qualities[index]))
    return out
