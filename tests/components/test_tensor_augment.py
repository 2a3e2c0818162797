"""Batch blur and JPEG augmentation: probabilities, identity at 0, and the JPEG round trip."""

from __future__ import annotations

import torch

from lightning_modules.components.tensor_augment import jpeg_roundtrip, random_blur, random_jpeg


def test_probability_zero_is_identity_and_one_changes_every_image() -> None:
    images = torch.rand(4, 3, 16, 16)
    assert torch.equal(random_blur(images, 0.0, (1.0, 2.0)), images)
    assert torch.equal(random_jpeg(images, 0.0, (30, 40)), images)
    blurred = random_blur(images, 1.0, (1.0, 2.0))
    assert all(not torch.equal(a, b) for a, b in zip(blurred, images, strict=True))
    assert blurred.std() < images.std()  # smoother


def test_jpeg_roundtrip_keeps_shape_and_range_and_loses_detail_with_quality() -> None:
    image = torch.rand(3, 32, 32)
    low, high = jpeg_roundtrip(image, 10), jpeg_roundtrip(image, 95)
    assert low.shape == image.shape and 0 <= low.min() and low.max() <= 1
    assert (low - image).abs().mean() > (high - image).abs().mean()
