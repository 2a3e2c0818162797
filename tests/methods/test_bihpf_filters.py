"""BiHPF's filters: the formula on hand-computed cases, symmetry, identity when off, gradients, precision."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_modules.bihpf.networks import (
    BiHPF,
    BiHPFNet,
    FrequencyHighPass,
    PixelHighPass,
    highpass_weight,
)
from lightning_modules.components.spectral import radial_distance


def test_radial_distance_hand_case() -> None:
    r = radial_distance(4, 4)
    # center (2, 2); r_max = |(0, 0) - (2, 2)| = 2 * sqrt(2)
    assert r[2, 2] == 0
    assert r[0, 0] == pytest.approx(1.0)
    assert r[2, 0] == pytest.approx(2 / (2 * math.sqrt(2)))
    assert r[3, 3] == pytest.approx(math.sqrt(2) / (2 * math.sqrt(2)))


def test_gaussian_weight_hand_case() -> None:
    radius = torch.tensor([0.0, 0.25, 1.0])
    weight = highpass_weight(radius, cutoff=0.25, gain=1.0)
    expected = [1.0, 1 + (1 - math.exp(-0.5)), 1 + (1 - math.exp(-1 / (2 * 0.0625)))]
    assert weight.tolist() == pytest.approx(expected, rel=1e-6)


def test_butterworth_weight_is_zero_at_dc_and_half_at_cutoff() -> None:
    weight = highpass_weight(
        torch.tensor([0.0, 0.3, 10.0]), cutoff=0.3, gain=2.0, profile="butterworth", order=2
    )
    assert weight.tolist() == pytest.approx([1.0, 2.0, 3.0], abs=1e-3)


def test_frequency_filter_keeps_dc_and_amplifies_nyquist_by_the_formula() -> None:
    height = width = 8
    flt = FrequencyHighPass(cutoff=0.25, gain=1.0, profile="gaussian", order=2)
    constant = torch.full((1, 3, height, width), 0.3)
    assert torch.allclose(flt(constant), constant, atol=1e-6)
    # (-1)^(i+j) has all its energy at frequency (H/2, W/2) unshifted, i.e. index (0, 0) after fftshift
    i, j = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    checker = ((-1.0) ** (i + j)).expand(1, 1, height, width)
    gain_at_corner = 1 + (1 - math.exp(-1 / (2 * 0.25**2)))
    assert torch.allclose(flt(checker), checker * gain_at_corner, atol=1e-5)


def test_pixel_filter_is_the_weight_map() -> None:
    flt = PixelHighPass(cutoff=0.5, gain=1.0, profile="gaussian", order=2)
    out = flt(torch.ones(1, 1, 4, 4))
    r = radial_distance(4, 4)
    assert torch.allclose(out[0, 0], 1 + (1 - torch.exp(-(r**2) / (2 * 0.25))))
    assert out[0, 0, 2, 2] == 1.0 and out[0, 0, 0, 0] > out[0, 0, 1, 1] > 1.0


def test_weights_are_radially_symmetric() -> None:
    r = radial_distance(8, 8)
    for flt in (FrequencyHighPass(0.25, 1.0, "gaussian", 2), PixelHighPass(0.5, 1.0, "gaussian", 2)):
        weight = flt.weight(8, 8, torch.device("cpu"))
        centered = weight[1:, 1:]  # indices 1..7 lie symmetrically around the center index 4
        assert torch.allclose(centered, centered.flip(0), atol=1e-6)
        assert torch.allclose(centered, centered.flip(1), atol=1e-6)
        assert torch.allclose(centered, centered.transpose(0, 1), atol=1e-6)
        # a function of the radius only: equal radii give equal weights, larger radii larger weights
        order = torch.argsort(r.flatten())
        assert torch.all(torch.diff(weight.flatten()[order]) >= -1e-6)


def test_filters_off_are_identity_and_gain_zero_is_identity() -> None:
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(BiHPF(use_frequency=False, use_pixel=False)(x), x)
    zero_gain = BiHPF(frequency_gain=0.0, pixel_gain=0.0)
    assert torch.allclose(zero_gain(x), x, atol=1e-5)


def test_filter_order_matters_and_both_orders_run() -> None:
    x = torch.rand(1, 3, 16, 16)
    a = BiHPF(order="frequency_first")(x)
    b = BiHPF(order="pixel_first")(x)
    assert a.shape == b.shape == x.shape and not torch.allclose(a, b)


def test_weight_is_cached_as_a_buffer_per_size() -> None:
    flt = FrequencyHighPass(0.25, 1.0, "gaussian", 2)
    flt(torch.rand(1, 3, 8, 8))
    flt(torch.rand(1, 3, 12, 12))
    names = {name for name, _ in flt.named_buffers()}
    assert names == {"weight_8x8", "weight_12x12"}
    assert not flt.state_dict()  # not persistent: derived from the arguments


def test_gradients_flow_to_input_and_classifier() -> None:
    net = BiHPFNet(BiHPF(), backbone="resnet18", pretrained=False)
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    net(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in net.classifier.parameters() if p.requires_grad)


def test_fft_runs_in_float32_under_bf16_autocast() -> None:
    flt = FrequencyHighPass(0.25, 1.0, "gaussian", 2)
    x = torch.rand(1, 3, 10, 10)  # not a power of two: half-precision FFT would refuse it
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = flt(x)
    assert out.dtype == torch.float32
    assert torch.allclose(out, flt(x), atol=1e-6)


def test_bad_filter_arguments_fail_clearly() -> None:
    with pytest.raises(ValueError, match="cutoff"):
        BiHPF(frequency_cutoff=0.0)
    with pytest.raises(ValueError, match="profile"):
        BiHPF(profile="box")
    with pytest.raises(ValueError, match="order"):
        BiHPF(order="sideways")
