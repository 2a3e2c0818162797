"""Per-frame style latents: the :class:`StyleEncoder` interface, the pSp encoder (18 x 512 StyleGAN2 W+ codes) and
the stand-in face autoencoder's encoder (the extraction that uses them: ``latents.py``).

pSp (Richardson et al., CVPR 2021) is what Style Latent Flows uses: an IR-SE-50 backbone with a feature pyramid and
18 "map2style" heads (3 coarse from the 16x16 map, 4 middle from 32x32, 11 fine from 64x64), on FFHQ-aligned 256 px
faces in [-1, 1], plus the generator's average latent. Its weights (e.g. ``psp_ffhq_encode.pt``) cannot be
downloaded here: :func:`load_style_encoder` reads them from a local file, with the official parameter names, so
the published checkpoint loads as is. Without them, a face autoencoder trained in this framework
(``configs/face_autoencoder.yaml``) stands in, and the extraction says so.
"""

from __future__ import annotations

import itertools
import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.outputs.checkpoints import (
    RunCheckpointError,
    read_run_checkpoint,
)

log = logging.getLogger(__name__)


class StyleEncoder(nn.Module):
    """Frames (N, 3, S, S) in [0, 1] -> style latents (N, num_layers * layer_dim), one row per frame."""

    num_layers: int
    layer_dim: int
    input_size: int
    description: str

    @property
    def latent_dim(self) -> int:
        return self.num_layers * self.layer_dim


# ---------------------------------------------------------------------------------------------- pSp (IR-SE-50)
class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * weight


class BottleneckIRSE(nn.Module):
    """IR bottleneck with squeeze-excitation; parameter names as pSp's ``bottleneck_IR_SE``."""

    def __init__(self, in_channels: int, depth: int, stride: int) -> None:
        super().__init__()
        if in_channels == depth:
            self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channels, depth, 1, stride, bias=False), nn.BatchNorm2d(depth)
            )
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
            SqueezeExcite(depth),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class EqualLinear(nn.Module):
    """StyleGAN2's equalised-learning-rate linear layer (weight scaled by 1 / sqrt(fan_in) at run time)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.scale = 1 / math.sqrt(in_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class MapToStyle(nn.Module):
    """Stride-2 convolutions down to 1x1, then an equalised linear: one 512-d W+ code."""

    def __init__(self, channels: int, spatial: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(int(math.log2(spatial))):
            layers += [nn.Conv2d(channels, channels, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.convs(x).flatten(1))


class PSPEncoder(StyleEncoder):
    """pSp's GradualStyleEncoder (IR-SE-50, 18 W+ codes) with the generator's average latent added."""

    num_layers, layer_dim, input_size = 18, 512, 256
    description = "pSp encoder (StyleGAN2 W+, 18 x 512)"
    UNITS = (
        (64, 64, 3),
        (64, 128, 4),
        (128, 256, 14),
        (256, 512, 3),
    )  # (in, depth, units) per stage, stride 2 first

    def __init__(self) -> None:
        super().__init__()
        self.input_layer = nn.Sequential(
            nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64)
        )
        self.body = nn.Sequential(
            *[
                BottleneckIRSE(i if u == 0 else d, d, 2 if u == 0 else 1)
                for i, d, n in self.UNITS
                for u in range(n)
            ]
        )
        self.styles = nn.ModuleList(MapToStyle(512, 16 if j < 3 else 32 if j < 7 else 64) for j in range(18))
        self.latlayer1 = nn.Conv2d(256, 512, 1)
        self.latlayer2 = nn.Conv2d(128, 512, 1)
        self.register_buffer("latent_avg", torch.zeros(18, 512))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(frames.float(), size=(256, 256), mode="bilinear", align_corners=False) * 2 - 1
        x = self.input_layer(x)
        taps = {}
        for index, unit in enumerate(self.body):
            x = unit(x)
            if index in (6, 20, 23):  # ends of stages 2, 3, 4: 64x64x128, 32x32x256, 16x16x512
                taps[index] = x
        c1, c2, c3 = taps[6], taps[20], taps[23]
        p2 = F.interpolate(c3, size=c2.shape[-2:], mode="bilinear", align_corners=True) + self.latlayer1(c2)
        p1 = F.interpolate(p2, size=c1.shape[-2:], mode="bilinear", align_corners=True) + self.latlayer2(c1)
        maps = [c3] * 3 + [p2] * 4 + [p1] * 11
        codes = (
            torch.stack([style(m) for style, m in zip(self.styles, maps, strict=True)], dim=1)
            + self.latent_avg
        )
        return codes.flatten(1)


def load_psp(path: Path) -> PSPEncoder:
    """The encoder of a pSp checkpoint (``state_dict`` with ``encoder.*`` keys, and ``latent_avg``)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state = {
        k.removeprefix("encoder."): v
        for k, v in checkpoint.get("state_dict", {}).items()
        if k.startswith("encoder.")
    }
    if not state:
        raise RunCheckpointError(f"style_encoder={str(path)!r}: no encoder.* weights (not a pSp checkpoint)")
    encoder = PSPEncoder()
    average = checkpoint.get("latent_avg")
    if average is not None:
        state["latent_avg"] = average.reshape(-1, 512).expand(18, 512).clone()
    else:
        log.warning("%s has no latent_avg: W+ codes are not offset by the average latent", path)
        state["latent_avg"] = torch.zeros(18, 512)
    encoder.load_state_dict(state)
    return encoder


# ----------------------------------------------------------------------------------- the stand-in face autoencoder
class FaceAutoencoder(nn.Module):
    """Convolutional autoencoder on face crops whose bottleneck is ``num_layers`` x ``layer_dim`` codes (a small
    W+-shaped latent): strided convolutions down to 4x4, a linear bottleneck, the mirror decoder (sigmoid)."""

    def __init__(
        self, image_size: int = 32, width: int = 32, num_layers: int = 4, layer_dim: int = 32
    ) -> None:
        super().__init__()
        if image_size < 8 or image_size & (image_size - 1):
            raise ValueError(f"model.init_args.image_size must be a power of two >= 8, got {image_size}")
        steps = int(math.log2(image_size // 4))
        channels = [3] + [width * 2**i for i in range(steps)]
        down: list[nn.Module] = []
        for a, b in itertools.pairwise(channels):
            down += [nn.Conv2d(a, b, 4, 2, 1), nn.BatchNorm2d(b), nn.LeakyReLU(0.2)]
        self.encoder = nn.Sequential(
            *down, nn.Flatten(), nn.Linear(channels[-1] * 16, num_layers * layer_dim)
        )
        up: list[nn.Module] = [
            nn.Linear(num_layers * layer_dim, channels[-1] * 16),
            nn.Unflatten(1, (channels[-1], 4, 4)),
        ]
        for a, b in itertools.pairwise(channels[::-1]):
            up += [nn.ReLU(), nn.ConvTranspose2d(a, b, 4, 2, 1)] + ([nn.BatchNorm2d(b)] if b != 3 else [])
        self.decoder = nn.Sequential(*up, nn.Sigmoid())
        self.image_size, self.num_layers, self.layer_dim = image_size, num_layers, layer_dim

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.shape[-1] != self.image_size:
            frames = F.interpolate(frames.float(), size=(self.image_size, self.image_size), mode="area")
        return self.encoder(frames.float())

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        latents = self.encode(frames)
        return latents, self.decoder(latents)


class AutoencoderStyleEncoder(StyleEncoder):
    """The stand-in: the encoder half of a :class:`FaceAutoencoder` trained here (not pSp)."""

    def __init__(self, autoencoder: FaceAutoencoder) -> None:
        super().__init__()
        self.autoencoder = autoencoder
        self.num_layers, self.layer_dim = autoencoder.num_layers, autoencoder.layer_dim
        self.input_size = autoencoder.image_size
        self.description = (
            f"face autoencoder trained here ({self.num_layers} x {self.layer_dim}; stand-in for pSp)"
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.encode(frames)


def load_style_encoder(path: str | Path) -> StyleEncoder:
    """A :class:`FaceAutoencoderModule` run folder / checkpoint, or a pSp checkpoint file; in eval mode."""
    path = Path(path)
    if path.is_file() and not path.name.endswith(".ckpt"):
        return load_psp(path).eval()
    h, state = read_run_checkpoint(
        path, "style_encoder", "autoencoder.", "face_autoencoder.yaml", "FaceAutoencoderModule", "layer_dim"
    )
    autoencoder = FaceAutoencoder(h["image_size"], h["width"], h["num_layers"], h["layer_dim"])
    autoencoder.load_state_dict(state)
    return AutoencoderStyleEncoder(autoencoder).eval()


def style_latent_dim(path: str | Path) -> int:
    """Width of the latents an encoder writes, read without building it (pSp: 18 x 512)."""
    path = Path(path)
    if path.is_file() and not path.name.endswith(".ckpt"):
        return PSPEncoder.num_layers * PSPEncoder.layer_dim
    h, _ = read_run_checkpoint(
        path, "style_encoder", "autoencoder.", "face_autoencoder.yaml", "FaceAutoencoderModule", "layer_dim"
    )
    return int(h["num_layers"] * h["layer_dim"])
