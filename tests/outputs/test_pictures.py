"""Picture helpers, checked pixel by pixel."""

from __future__ import annotations

import math

import torch

from lightning_modules.outputs.pictures import signed_picture, spectrum_picture


def test_signed_picture_maps_zero_to_gray_and_the_peak_to_the_ends() -> None:
    maps = torch.tensor([[[[0.0, 2.0], [-1.0, 0.5]]]])
    picture = signed_picture(maps)
    assert picture.tolist() == [[[[0.5, 1.0], [0.25, 0.625]]]]


def test_spectrum_picture_puts_a_sinusoid_at_its_frequency() -> None:
    size, cycles = 16, 4
    columns = torch.arange(size, dtype=torch.float32)
    wave = torch.cos(2 * math.pi * cycles * columns / size).expand(1, 3, size, size)
    picture = spectrum_picture(wave)
    assert picture.shape == (1, 3, size, size) and picture.min() == 0 and picture.max() == 1
    peaks = (picture[0, 0] == 1).nonzero().tolist()
    # DC sits at (8, 8) after fftshift; +-4 cycles along the width
    assert sorted(peaks) == [[size // 2, size // 2 - cycles], [size // 2, size // 2 + cycles]]
