"""BiHPF (Jeong et al., WACV 2022): a frequency-level and a pixel-level high-pass filter before a CNN classifier.

No reference code exists; the filters are our reading of the paper (README.md):

    r_f(u, v) = |(u, v) - (H/2, W/2)| / r_max on the shifted spectrum
    w_f = 1 + g_f * (1 - exp(-r_f^2 / (2 c_f^2)))            (gaussian; butterworth(n) optional)
    x_f = Re F^-1(ishift(w_f * shift(F(x))))
    w_p = 1 + g_p * (1 - exp(-r_p^2 / (2 c_p^2)))            r_p: distance from the image center
    x'  = w_p * x_f

The frequency filter amplifies the high frequencies where up-sampling artefacts live; the pixel filter
amplifies the background around the (centered) object, where the paper's artifact compression map found them.
Both are fixed, differentiable, and cached per input size as buffers. With both gains 0 (or both filters
off) the network is Wang et al.'s CNNDetection classifier.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from lightning_modules.components.backbones import Normalize
from lightning_modules.components.binary_head import BinaryLogitNet
from lightning_modules.components.spectral import fft2_shifted, ifft2_shifted_real, radial_distance

Profile = Literal["gaussian", "butterworth"]


def highpass_weight(
    radius: torch.Tensor, cutoff: float, gain: float, profile: Profile = "gaussian", order: int = 2
) -> torch.Tensor:
    """``1 + gain * H(radius)`` with H a high-pass profile rising from 0 at radius 0 towards 1.

    gaussian: ``H = 1 - exp(-r^2 / (2 c^2))``; butterworth(n): ``H = 1 / (1 + (c / r)^(2n))`` (0 at r = 0).
    """
    if cutoff <= 0:
        raise ValueError(f"high-pass cutoff must be > 0, got {cutoff}")
    if profile == "gaussian":
        response = 1.0 - torch.exp(-(radius**2) / (2.0 * cutoff**2))
    elif profile == "butterworth":
        safe = radius.clamp_min(1e-12)
        response = torch.where(
            radius > 0, 1.0 / (1.0 + (cutoff / safe) ** (2 * order)), torch.zeros_like(radius)
        )
    else:
        raise ValueError(f"high-pass profile must be gaussian or butterworth, got {profile!r}")
    return 1.0 + gain * response


class _RadialFilter(nn.Module):
    """Shared caching: the (H, W) weight map is computed once per input size and kept as a buffer."""

    def __init__(self, cutoff: float, gain: float, profile: Profile, order: int) -> None:
        super().__init__()
        highpass_weight(torch.zeros(1), cutoff, gain, profile, order)  # validate the arguments now
        self.cutoff, self.gain, self.profile, self.order = cutoff, gain, profile, order

    def weight(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        name = f"weight_{height}x{width}"
        cached = getattr(self, name, None)
        if cached is None or cached.device != device:
            radius = radial_distance(height, width, device=device)
            self.register_buffer(
                name,
                highpass_weight(radius, self.cutoff, self.gain, self.profile, self.order),
                persistent=False,
            )
        return getattr(self, name)

    def extra_repr(self) -> str:
        return f"cutoff={self.cutoff}, gain={self.gain}, profile={self.profile}" + (
            f", order={self.order}" if self.profile == "butterworth" else ""
        )


class FrequencyHighPass(_RadialFilter):
    """``x_f = Re F^-1(ishift(w_f * shift(F(x))))`` per channel, in float32; returns the input's dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight(x.shape[-2], x.shape[-1], x.device)
        return ifft2_shifted_real(fft2_shifted(x) * weight).to(x.dtype)


class PixelHighPass(_RadialFilter):
    """``x' = w_p * x``: amplifies pixels by their distance from the image center (the background)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight(x.shape[-2], x.shape[-1], x.device).to(x.dtype)


class BiHPF(nn.Module):
    """The two filters in the configured order (frequency then pixel by default); a disabled one is skipped."""

    def __init__(
        self,
        use_frequency: bool = True,
        use_pixel: bool = True,
        frequency_cutoff: float = 0.25,
        frequency_gain: float = 1.0,
        pixel_cutoff: float = 0.5,
        pixel_gain: float = 1.0,
        profile: Profile = "gaussian",
        butterworth_order: int = 2,
        order: Literal["frequency_first", "pixel_first"] = "frequency_first",
    ) -> None:
        super().__init__()
        if order not in ("frequency_first", "pixel_first"):
            raise ValueError(f"BiHPF order must be frequency_first or pixel_first, got {order!r}")
        self.frequency = (
            FrequencyHighPass(frequency_cutoff, frequency_gain, profile, butterworth_order)
            if use_frequency
            else None
        )
        self.pixel = (
            PixelHighPass(pixel_cutoff, pixel_gain, profile, butterworth_order) if use_pixel else None
        )
        self.order = order

    @property
    def is_identity(self) -> bool:
        return self.frequency is None and self.pixel is None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = (
            [self.frequency, self.pixel] if self.order == "frequency_first" else [self.pixel, self.frequency]
        )
        for step in steps:
            if step is not None:
                x = step(x)
        return x


class BiHPFNet(nn.Module):
    """Filters + normalization (the backbone's own statistics) + a timm classifier with one logit (Wang et al.'s
    head init).

    ``space="image"`` filters the [0, 1] image before normalization (default); ``space="normalized"`` filters
    after it. With the filters off this is exactly the CNNDetection baseline.
    """

    def __init__(
        self,
        filters: BiHPF,
        backbone: str = "resnet50",
        pretrained: bool = True,
        pretrained_path: str | None = None,
        space: Literal["image", "normalized"] = "image",
    ) -> None:
        super().__init__()
        if space not in ("image", "normalized"):
            raise ValueError(f"BiHPF space must be image or normalized, got {space!r}")
        self.filters = filters
        self.space = space
        self.classifier = BinaryLogitNet(backbone, pretrained, pretrained_path, normalize=False)
        self.normalize = Normalize.of_backbone(self.classifier.backbone)

    def filtered(self, x: torch.Tensor) -> torch.Tensor:
        """What the classifier sees, before (``space=image``) or after (``normalized``) normalization."""
        if self.space == "image":
            return self.normalize(self.filters(x))
        return self.filters(self.normalize(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (B,) for images (B, 3, H, W) in [0, 1]."""
        return self.classifier(self.filtered(x))
