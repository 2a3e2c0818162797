"""The adaptive attention link regularizer's pieces (Jin & Choi, arXiv 2211.13852; the concrete design is ours,
README.md): a ViT that exposes each head's CLS-to-patch attention, a frozen CNN whose channel-wise
spatial attention maps are resized to the ViT's patch grid, the trainable links from CNN channels to ViT heads,
and the divergence between a head's linked target and its attention.

Shapes: B images, L regularized layers, H heads, C CNN channels, P patches (the ViT's grid, row-major).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from einops import einsum, rearrange
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from lightning_modules.components.backbones import InputNormalization, create_backbone, input_normalizer

CNNMap = Literal["relu", "softmax"]
Divergence = Literal["kl", "reverse_kl", "mse"]
FixedWeights = Literal["renormalized", "uniform"]
LinkInit = Literal["zeros", "random", "distinct"]


class AttentionViT(nn.Module):
    """A timm ViT (DeiT-Tiny/Small... by name) trained from scratch, returning logits and, for the layers asked
    for, each head's attention of the CLS query over the patch keys (prefix tokens dropped, renormalized).

    timm's attention is a fused kernel that returns no weights, so a hook on each block's ``qkv`` projection
    recomputes softmax(q_cls · kᵀ / √d) for the CLS row only: O(N) memory per head instead of O(N²), gradients
    flow into q and k. Renormalizing after dropping prefix columns equals a softmax over the patch logits.
    ``dynamic_img_size`` lets the same network run on other image sizes (the position embedding is resampled).

    Args:
        name: timm ViT name (``deit_tiny_patch16_224``, ``deit_small_patch16_224``, ``vit_small_patch16_224``...).
        num_classes: Classifier outputs.
        img_size: Image size the position embedding is built for.
        patch_size: Patch side in pixels.
        depth: Number of blocks (null: the model's own, 12 for DeiT).
        embed_dim: Token width (null: the model's own, 192 for DeiT-Tiny); a multiple of the head count.
        drop_path_rate: Stochastic depth.
        pretrained: Hub weights (the paper trains from scratch).
    """

    def __init__(
        self,
        name: str = "deit_tiny_patch16_224",
        num_classes: int = 100,
        img_size: int = 224,
        patch_size: int = 16,
        depth: int | None = None,
        drop_path_rate: float = 0.0,
        pretrained: bool = False,
        embed_dim: int | None = None,
    ) -> None:
        super().__init__()
        extra = {k: v for k, v in (("depth", depth), ("embed_dim", embed_dim)) if v}
        self.vit = create_backbone(
            name,
            pretrained=pretrained,
            num_classes=num_classes,
            img_size=img_size,
            patch_size=patch_size,
            dynamic_img_size=True,
            drop_path_rate=drop_path_rate,
            **extra,
        )
        if not isinstance(self.vit, VisionTransformer):
            raise ValueError(f"model.init_args.backbone={name!r} is not a timm VisionTransformer")
        self.patch_size = int(self.vit.patch_embed.patch_size[0])
        self.num_layers = len(self.vit.blocks)
        self.num_heads = self.vit.blocks[0].attn.num_heads
        self._wanted: set[int] = set()
        self._maps: dict[int, torch.Tensor] = {}
        for index, block in enumerate(self.vit.blocks):
            block.attn.qkv.register_forward_hook(self._hook(index, block.attn))

    def _hook(self, index: int, attention: nn.Module):
        def capture(module: nn.Module, inputs: tuple[torch.Tensor], qkv: torch.Tensor) -> None:
            if index not in self._wanted:
                return
            q, k, _ = rearrange(qkv, "b n (three h d) -> three b h n d", three=3, h=attention.num_heads)
            q, k = attention.q_norm(q[:, :, :1]), attention.k_norm(k)
            logits = (
                einsum(q.float(), k.float(), "b h one d, b h n d -> b h one n")[:, :, 0] * attention.scale
            )
            self._maps[index] = logits[..., self.vit.num_prefix_tokens :].softmax(dim=-1)

        return capture

    def grid(self, image: torch.Tensor) -> tuple[int, int]:
        """The patch grid (rows, columns) for an image batch."""
        height, width = image.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f"image size {height}x{width} is not a multiple of the patch size {self.patch_size}"
            )
        return height // self.patch_size, width // self.patch_size

    def forward(
        self, image: torch.Tensor, layers: Sequence[int] = ()
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits (B, classes), attention (B, L, H, P) for ``layers`` in that order, or None when none asked)."""
        self._wanted, self._maps = set(layers), {}
        try:
            logits = self.vit(image)
            maps = torch.stack([self._maps[i] for i in layers], dim=1) if layers else None
        finally:
            self._wanted, self._maps = set(), {}
        return logits, maps


def feature_module(model: nn.Module, index: int, name: str) -> str:
    """The sub-module name of timm feature ``index`` of ``model`` (the same strides across CNN families)."""
    info = getattr(model, "feature_info", None)
    if not info:
        raise ValueError(f"cnn_layer={index}: {name} has no timm feature_info; name its sub-module instead")
    if not 0 <= index < len(info):
        raise ValueError(f"cnn_layer={index}: {name} has feature indices 0..{len(info) - 1}")
    return str(info[index]["module"])


class _Stop(Exception):
    """Raised by the feature hook: nothing after the chosen layer needs computing."""


class ChannelAttentionCNN(nn.Module):
    """A frozen CNN's channel-wise spatial attention at one layer: A_c = relu(F_c) / Σ_pos relu(F_c) (or
    softmax(F_c / τ)) over the patch grid, after resizing F bilinearly to it. Always in eval mode, no gradients;
    the forward pass stops at the chosen layer.

    Args:
        name: timm backbone name (``resnet50``, ``tf_efficientnet_lite0``; ``cifar_resnet20`` for CIFAR-sized
            images).
        layer: A timm feature index (3: stride 16, ``layer3`` of a ResNet-50, 14×14 at 224 px; ``blocks.4`` of
            an EfficientNet-Lite), or the name of the sub-module whose output is used (``blocks.5``).
        pretrained: ImageNet weights (the hub's, or packaged ones for ``tf_efficientnet_lite*``).
        pretrained_path: Local weights, or a ``.ckpt`` of a classifier trained in this framework.
        normalization: The CNN's own input normalization (it sees the same augmented image as the ViT):
            ``backbone`` (the statistics its weights were trained with) or another ``InputNormalization``.
        input_size: The side the image is resized to (bilinear) before the CNN, so an ImageNet CNN sees objects
            at a scale its features mean something at (Fashion-MNIST's 28 px to 128); null: as the ViT sees it.
        cache: Keep each sample's feature map by its key (``path``) after the first time it is computed: only
            for images that are the same every epoch (no augmentation), since a cached map is not recomputed.
        map_kind: ``relu`` (normalized activations) or ``softmax``.
        temperature: τ of the softmax maps.
    """

    def __init__(
        self,
        name: str = "resnet50",
        layer: int | str = 3,
        pretrained: bool = True,
        pretrained_path: str | None = None,
        normalization: InputNormalization = "backbone",
        map_kind: CNNMap = "relu",
        temperature: float = 1.0,
        input_size: int | None = None,
        cache: bool = False,
    ) -> None:
        super().__init__()
        if map_kind not in ("relu", "softmax"):
            raise ValueError(f"cnn_map must be relu or softmax, got {map_kind!r}")
        self.cnn = create_backbone(
            name, pretrained=pretrained, pretrained_path=pretrained_path, num_classes=0
        )
        if isinstance(layer, int):
            layer = feature_module(self.cnn, layer, name)
        names = [n for n, _ in self.cnn.named_modules() if n]
        if layer not in names:
            top = [n for n, _ in self.cnn.named_children()]
            raise ValueError(
                f"cnn_layer={layer!r} is not a sub-module of {name}; its top-level ones are {top}"
            )
        self.cnn.get_submodule(layer).register_forward_hook(self._keep)
        self.cnn.requires_grad_(False)
        self.normalize = input_normalizer(normalization, self.cnn)
        self.map_kind, self.temperature = map_kind, temperature
        self.input_size, self.cache = input_size, cache
        self._cached: dict[str, torch.Tensor] = {}  # key -> (C, h, w) features, on the CPU
        self._features: torch.Tensor | None = None
        self.cnn.eval()
        self.num_channels = int(self.features(torch.zeros(1, 3, 64, 64)).shape[1])

    def _keep(self, module: nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        self._features = output
        raise _Stop

    def train(self, mode: bool = True) -> ChannelAttentionCNN:
        super().train(mode)
        self.cnn.eval()  # frozen: batch-norm statistics never move
        return self

    @torch.no_grad()
    def features(self, image: torch.Tensor, keys: list[str] | None = None) -> torch.Tensor:
        """The chosen layer's output F (B, C, h, w); with ``cache`` and ``keys``, computed once per key."""
        if self.cache and keys is not None:
            missing = [i for i, key in enumerate(keys) if key not in self._cached]
            if missing:
                computed = self.features(image[missing])
                for i, feature in zip(missing, computed, strict=True):
                    self._cached[keys[i]] = feature.cpu()
            return torch.stack([self._cached[key] for key in keys]).to(image.device)
        if self.input_size and tuple(image.shape[-2:]) != (self.input_size, self.input_size):
            image = F.interpolate(image.float(), size=(self.input_size, self.input_size), mode="bilinear")
        try:
            self.cnn(self.normalize(image))
        except _Stop:
            pass
        features, self._features = self._features, None
        if features is None:
            raise RuntimeError("the CNN's forward pass never reached the chosen layer")
        return features

    @torch.no_grad()
    def forward(
        self,
        image: torch.Tensor,
        grid: tuple[int, int],
        channels: torch.Tensor | None = None,
        keys: list[str] | None = None,
    ) -> torch.Tensor:
        """Maps A (B, C, P) on ``grid``, each a distribution over the patches; only ``channels`` when given."""
        features = self.features(image, keys).float()
        if channels is not None:
            features = features[:, channels]
        if tuple(features.shape[-2:]) != tuple(grid):
            features = F.interpolate(features, size=grid, mode="bilinear", align_corners=False)
        flat = rearrange(features, "b c h w -> b c (h w)")
        if self.map_kind == "softmax":
            return (flat / self.temperature).softmax(dim=-1)
        positive = flat.clamp_min(0) + 1e-8  # a channel silent everywhere becomes uniform, not 0/0
        return positive / positive.sum(dim=-1, keepdim=True)


def fixed_links(
    probabilities: torch.Tensor, top_k: int, weights: FixedWeights = "renormalized"
) -> torch.Tensor:
    """The advanced module's links: each head keeps its ``top_k`` channels by learned probability, renormalized
    (or uniform over them); every other link is 0. ``probabilities`` (L, H, C) -> (L, H, C)."""
    if not 1 <= top_k <= probabilities.shape[-1]:
        raise ValueError(f"top_k must be in 1..{probabilities.shape[-1]}, got {top_k}")
    if weights not in ("renormalized", "uniform"):
        raise ValueError(f"fixed_weights must be renormalized or uniform, got {weights!r}")
    values, indices = probabilities.topk(top_k, dim=-1)
    kept = values if weights == "renormalized" else torch.ones_like(values)
    links = torch.zeros_like(probabilities).scatter(-1, indices, kept)
    return links / links.sum(dim=-1, keepdim=True)


def initial_link_weights(shape: tuple[int, int, int], init: LinkInit, scale: float = 1.0) -> torch.Tensor:
    """W (L, H, C) before training: ``zeros`` (every head starts at the mean map, so heads that attend alike get
    the same gradient and stay alike), ``random`` (N(0, scale²)), or ``distinct`` (head h prefers channels c with
    c mod H = h by ``scale``: disjoint starting groups)."""
    if init == "zeros":
        return torch.zeros(shape)
    if init == "random":
        return scale * torch.randn(shape)
    if init == "distinct":
        heads, channels = shape[1], shape[2]
        groups = (torch.arange(channels)[None, :] % heads) == torch.arange(heads)[:, None]
        return (scale * groups.float())[None].expand(shape).clone()
    raise ValueError(f"link_init must be zeros, random or distinct, got {init!r}")


class AttentionLinks(nn.Module):
    """Links from CNN channels to ViT heads, one (H, C) matrix per regularized layer: P_l = softmax(W_l / τ) over
    channels, W initialized by ``init`` (:func:`initial_link_weights`). With ``fixed`` (L, H, C) the links are
    that constant instead (the advanced module, the k-means control) and only the channels some head uses are
    ever computed.

    Args:
        num_layers: L.
        num_heads: H.
        num_channels: C.
        temperature: τ_link.
        fixed: Constant link probabilities (rows summing to 1), or None for trainable links.
        init: How trainable links start (``zeros``, ``random``, ``distinct``).
        init_scale: The scale of a ``random`` or ``distinct`` start.
    """

    def __init__(
        self,
        num_layers: int,
        num_heads: int,
        num_channels: int,
        temperature: float = 1.0,
        fixed: torch.Tensor | None = None,
        init: LinkInit = "zeros",
        init_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"link_temperature must be > 0, got {temperature}")
        self.temperature = temperature
        shape = (num_layers, num_heads, num_channels)
        if fixed is None:
            self.weight: nn.Parameter | None = nn.Parameter(initial_link_weights(shape, init, init_scale))
            self.register_buffer("fixed", None)
            self.register_buffer("channels", None)
        else:
            if tuple(fixed.shape) != shape:
                raise ValueError(
                    f"fixed links have shape {tuple(fixed.shape)}, expected {shape} (layers, heads, channels)"
                )
            self.weight = None
            self.register_buffer("fixed", fixed.float().clone())
            self.register_buffer("channels", fixed.sum(dim=(0, 1)).nonzero().flatten())

    def probabilities(self) -> torch.Tensor:
        """P (L, H, C), rows summing to 1."""
        if self.fixed is not None:
            return self.fixed
        return (self.weight / self.temperature).softmax(dim=-1)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """Targets T (B, L, H, P) = Σ_c P[l, h, c] · A[b, c, p]; ``maps`` holds only ``channels`` when fixed."""
        links = self.probabilities()
        if self.channels is not None:
            links = links[..., self.channels]
        return einsum(links, maps, "l h c, b c p -> b l h p")


def distinct_top_sets(probabilities: torch.Tensor, k: int) -> list[int]:
    """Per layer, how many different top-``k`` channel sets its heads have (H: every head its own; 1: all alike)."""
    k = min(k, probabilities.shape[-1])
    top = probabilities.topk(k, dim=-1).indices.sort(dim=-1).values
    return [len({tuple(row.tolist()) for row in layer}) for layer in top]


def link_correlation_loss(target: torch.Tensor, attention: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean over batch, layers and heads of 1 - corr(T, sg(M)) over the patches: the links learn to make each
    head's target look like what the head attends to, and a head that still attends uniformly (no variance) gives
    its links no gradient — unlike KL(T ‖ M), which then rewards the flattest maps."""
    t = target.float() - target.float().mean(dim=-1, keepdim=True)
    m = attention.detach().float() - attention.detach().float().mean(dim=-1, keepdim=True)
    covariance = (t * m).sum(dim=-1)
    scale = t.norm(dim=-1) * m.norm(dim=-1)
    return (1 - covariance / (scale + eps) * (scale > eps)).mean()


def kmeans_channel_groups(maps: torch.Tensor, groups: int, seed: int = 0) -> torch.Tensor:
    """The control's links: channels clustered by their maps over a batch (``maps`` (B, C, P)) into ``groups``
    with k-means; row g of the result is uniform over cluster g's channels. (groups, C)."""
    from sklearn.cluster import KMeans

    features = maps.permute(1, 0, 2).reshape(maps.shape[1], -1).float().cpu().numpy()
    assigned = torch.as_tensor(KMeans(n_clusters=groups, n_init=10, random_state=seed).fit_predict(features))
    links = (assigned[None, :] == torch.arange(groups)[:, None]).float()
    empty = links.sum(dim=1) == 0
    links[empty] = 1.0  # a cluster k-means left empty: that head gets the mean map
    return links / links.sum(dim=1, keepdim=True)


def attention_divergence(
    target: torch.Tensor, attention: torch.Tensor, kind: Divergence = "kl", eps: float = 1e-8
) -> torch.Tensor:
    """Mean over batch, layers and heads of D(T, M) for maps over the last dimension.

    ``kl``: KL(T ‖ M) (penalises attention missing where the target has mass); ``reverse_kl``: KL(M ‖ T);
    ``mse``: mean squared difference of the maps scaled by the number of patches. Maps are clamped to ``eps``
    before logs.
    """
    if kind == "mse":
        patches = target.shape[-1]
        return ((patches * (target - attention)) ** 2).mean()
    if kind not in ("kl", "reverse_kl"):
        raise ValueError(f"divergence must be kl, reverse_kl or mse, got {kind!r}")
    t, m = target.float().clamp_min(eps), attention.float().clamp_min(eps)
    p, q = (t, m) if kind == "kl" else (m, t)
    return (p * (p.log() - q.log())).sum(dim=-1).mean()
