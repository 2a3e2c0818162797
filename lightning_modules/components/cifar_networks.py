"""CIFAR-style networks the calibration and mixing papers use, registered in timm's model registry.

timm's ResNets and DenseNets are ImageNet-shaped (7x7 stem, 4x down-sampling before the first stage), which
wastes a 32x32 input. These are the 3-stage CIFAR versions: ResNet-{20,32,56,110} (He et al., with
``drop_path_rate`` for the stochastic-depth variant ResNet-110-SD), Wide-ResNet-{28,32}-10 (Zagoruyko &
Komodakis) and DenseNet-40 (k = 12, Huang et al.). Registered names: ``cifar_resnet20``, ``cifar_resnet32``,
``cifar_resnet56``, ``cifar_resnet110``, ``cifar_wrn28_10``, ``cifar_wrn32_10``, ``cifar_densenet40``,
``cifar_pyramidnet110_a64`` (PyramidNet-110, alpha 64, bottlenecks: DCutMix's CIFAR-100 network), so
``timm.create_model`` (and :func:`create_backbone`) build them like any other model. They have no hub weights;
``pretrained_path`` loads a local state dict.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import DropPath
from timm.models import register_model
from torch import nn


class _ClassifierMixin:
    """timm's model API for the framework: ``forward_features`` (the last feature map), ``forward_head`` (pooling,
    then the classifier unless ``pre_logits``), ``get_classifier`` / ``reset_classifier`` and ``num_features``.
    A network defines ``forward_features``; ``forward`` is the two in sequence."""

    head: nn.Module
    num_features: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return pooled if pre_logits else self.head(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, drop_path: float = 0.0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )
        self.drop_path = DropPath(drop_path) if drop_path else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(self.shortcut(x) + self.drop_path(out))


class CifarResNet(_ClassifierMixin, nn.Module):
    """ResNet-(6n+2) with basic blocks, stages of 16, 32, 64 channels; stochastic depth via ``drop_path_rate``."""

    def __init__(
        self, depth: int = 110, num_classes: int = 10, in_chans: int = 3, drop_path_rate: float = 0.0
    ) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        blocks = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(in_chans, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        rates = torch.linspace(0, drop_path_rate, 3 * blocks).tolist()
        layers, cin = [], 16
        for stage, cout in enumerate((16, 32, 64)):
            for i in range(blocks):
                layers.append(BasicBlock(cin, cout, 2 if stage and i == 0 else 1, rates[stage * blocks + i]))
                cin = cout
        self.blocks = nn.Sequential(*layers)
        self.num_features = 64
        self.head = nn.Linear(64, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


class WideBlock(nn.Module):
    """Pre-activation wide block (BN-ReLU-conv x2) with dropout between the convolutions."""

    def __init__(self, cin: int, cout: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.shortcut = (
            nn.Identity() if stride == 1 and cin == cout else nn.Conv2d(cin, cout, 1, stride, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        return self.shortcut(x) + out


class WideResNet(_ClassifierMixin, nn.Module):
    """WRN-depth-widen: stages of 16k, 32k, 64k channels, (depth - 4) / 6 blocks each."""

    def __init__(
        self, depth: int = 28, widen: int = 10, num_classes: int = 10, in_chans: int = 3, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"Wide-ResNet depth must be 6n+4, got {depth}")
        blocks = (depth - 4) // 6
        widths = (16 * widen, 32 * widen, 64 * widen)
        self.stem = nn.Conv2d(in_chans, 16, 3, 1, 1, bias=False)
        layers, cin = [], 16
        for stage, cout in enumerate(widths):
            for i in range(blocks):
                layers.append(WideBlock(cin, cout, 2 if stage and i == 0 else 1, dropout))
                cin = cout
        self.blocks = nn.Sequential(*layers, nn.BatchNorm2d(cin), nn.ReLU())
        self.num_features = cin
        self.head = nn.Linear(cin, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.bn, self.conv = nn.BatchNorm2d(cin), nn.Conv2d(cin, growth, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.conv(F.relu(self.bn(x)))], dim=1)


class CifarDenseNet(_ClassifierMixin, nn.Module):
    """DenseNet (not BC): three dense blocks of (depth - 4) / 3 layers, growth ``growth``, 1x1 + pool transitions."""

    def __init__(self, depth: int = 40, growth: int = 12, num_classes: int = 10, in_chans: int = 3) -> None:
        super().__init__()
        if (depth - 4) % 3:
            raise ValueError(f"DenseNet depth must be 3n+4, got {depth}")
        layers_per_block = (depth - 4) // 3
        channels = 2 * growth
        modules: list[nn.Module] = [nn.Conv2d(in_chans, channels, 3, 1, 1, bias=False)]
        for block in range(3):
            for _ in range(layers_per_block):
                modules.append(DenseLayer(channels, growth))
                channels += growth
            if block < 2:
                modules += [
                    nn.BatchNorm2d(channels),
                    nn.ReLU(),
                    nn.Conv2d(channels, channels, 1, bias=False),
                    nn.AvgPool2d(2),
                ]
        self.features = nn.Sequential(*modules, nn.BatchNorm2d(channels), nn.ReLU())
        self.num_features = channels
        self.head = nn.Linear(channels, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class PyramidBlock(nn.Module):
    """PyramidNet's blocks (Han et al.). Basic: BN-conv3-BN-ReLU-conv3-BN. Bottleneck: BN-conv1-BN-ReLU-conv3-BN-
    ReLU-conv1(x4)-BN. The shortcut average-pools when strided and pads the missing channels with zeros."""

    def __init__(self, cin: int, width: int, stride: int, bottleneck: bool) -> None:
        super().__init__()
        if bottleneck:
            cout = 4 * width
            layers = [
                nn.BatchNorm2d(cin),
                nn.Conv2d(cin, width, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, stride, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, cout, 1, bias=False),
                nn.BatchNorm2d(cout),
            ]
        else:
            cout = width
            layers = [
                nn.BatchNorm2d(cin),
                nn.Conv2d(cin, width, 3, stride, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, 1, 1, bias=False),
                nn.BatchNorm2d(width),
            ]
        self.body = nn.Sequential(*layers)
        self.pool = nn.AvgPool2d(2, ceil_mode=True) if stride == 2 else nn.Identity()
        self.extra = cout - cin
        self.out_channels = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.pool(x)
        if self.extra:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra))
        return self.body(x) + shortcut


class PyramidNet(_ClassifierMixin, nn.Module):
    """PyramidNet for CIFAR: block widths grow linearly by alpha / (3n) from 16 to 16 + alpha.

    Basic blocks: n = (depth - 2) / 6 per stage; bottleneck blocks (outputs 4x wider): n = (depth - 2) / 9. The
    DCutMix code trains PyramidNet-110 with alpha 64 and bottlenecks (1.7 M parameters for 100 classes).
    """

    def __init__(
        self,
        depth: int = 110,
        alpha: int = 64,
        bottleneck: bool = True,
        num_classes: int = 100,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        per_block = 9 if bottleneck else 6
        if (depth - 2) % per_block:
            raise ValueError(
                f"PyramidNet depth must be {per_block}n+2 with {'bottleneck' if bottleneck else 'basic'} blocks, got {depth}"
            )
        blocks = (depth - 2) // per_block
        step = alpha / (3 * blocks)
        self.stem = nn.Sequential(nn.Conv2d(in_chans, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16))
        layers: list[nn.Module] = []
        width, cin = 16.0, 16
        for stage in range(3):
            for i in range(blocks):
                width += step
                block = PyramidBlock(cin, round(width), 2 if stage and i == 0 else 1, bottleneck)
                layers.append(block)
                cin = block.out_channels
        self.blocks = nn.Sequential(*layers, nn.BatchNorm2d(cin), nn.ReLU(inplace=True))
        self.num_features = cin
        self.head = nn.Linear(cin, num_classes) if num_classes else nn.Identity()
        for module in self.modules():  # He et al.'s fan-out initialization, as PyramidNet's code
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


def _create(model: nn.Module, pretrained: bool, pretrained_cfg_overlay: dict | None) -> nn.Module:
    """No hub weights exist for these: ``pretrained`` needs a local file (``pretrained_path``)."""
    if pretrained:
        path = (pretrained_cfg_overlay or {}).get("file")
        if not path:
            raise ValueError(
                "CIFAR networks have no downloadable weights; pass model.init_args.pretrained_path"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
        head = {k for k in state if k.startswith("head.")}
        if head and state["head.weight"].shape != model.head.weight.shape:
            state = {k: v for k, v in state.items() if k not in head}
        model.load_state_dict(state, strict=False)
    return model


def _options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments timm passes every model builder, less those the networks do not take."""
    for key in ("pretrained_cfg", "cache_dir"):
        kwargs.pop(key, None)
    return kwargs


@register_model
def cifar_resnet20(
    pretrained: bool = False, pretrained_cfg_overlay: dict | None = None, **kwargs: Any
) -> CifarResNet:
    """ResNet-20 for 32 x 32 inputs (He et al., 0.27 M parameters)."""
    return _create(CifarResNet(20, **_options(kwargs)), pretrained, pretrained_cfg_overlay)


@register_model
def cifar_resnet32(
    pretrained: bool = False, pretrained_cfg_overlay: dict | None = None, **kwargs: Any
) -> CifarResNet:
    """ResNet-32 for 32 x 32 inputs."""
    return _create(CifarResNet(32, **_options(kwargs)), pretrained, pretrained_cfg_overlay)


@register_model
def cifar_resnet56(
    pretrained: bool = False, pretrained_cfg_overlay: dict | None = None, **kwargs: Any
) -> CifarResNet:
    """ResNet-56 for 32 x 32 inputs."""
    return _create(CifarResNet(56, **_options(kwargs)), pretrained, pretrained_cfg_overlay)


@register_model
def cifar_resnet110(
    pretrained: bool = False, pretrained_cfg_overlay: dict | None = None, **kwargs: Any
) -> CifarResNet:
    """ResNet-110 (the calibration papers' network; ``drop_path_rate`` 0.5 gives ResNet-110-SD)."""
    return _create(CifarResNet(110, **_options(kwargs)), pretrained, pretrained_cfg_overlay)


@register_model
def cifar_wrn28_10(
    pretrained: bool = False, pretrained_cfg_overlay: dict | None = None, **kwargs: Any
) -> WideResNet:
    """Wide-ResNet-28-10 (Zagoruyko & Komodakis)."""
    return _create(WideResNet(28, 10, **_options(kwargs)), pretrained, pretrained_cfg_overlay)


@register_model
def cifar_wrn32_10(
    pretrained: bool = False, pretrained_cfg_overlay: dict | None = None, **kwargs: Any
) -> WideResNet:
    """Wide-ResNet-32-10."""
    return _create(WideResNet(32, 10, **_options(kwargs)), pretrained, pretrained_cfg_overlay)


@register_model
def cifar_densenet40(
    pretrained: bool = False, pretrained_cfg_overlay: dict | None = None, **kwargs: Any
) -> CifarDenseNet:
    """DenseNet-40 with growth 12 (Huang et al.)."""
    return _create(CifarDenseNet(40, 12, **_options(kwargs)), pretrained, pretrained_cfg_overlay)


@register_model
def cifar_pyramidnet110_a64(
    pretrained: bool = False, pretrained_cfg_overlay: dict | None = None, **kwargs: Any
) -> PyramidNet:
    """PyramidNet-110, alpha 64, bottleneck blocks: DCutMix's CIFAR-100 network (1.7 M parameters)."""
    return _create(PyramidNet(110, 64, True, **_options(kwargs)), pretrained, pretrained_cfg_overlay)
