"""K-image mixing by stick-breaking under a Dirichlet prior (DMixup / DCutMix, Jeong et al., IEEE Access 2023).

Plain torch, batched on the batch's device (the official code loops over samples on the CPU), usable without
Lightning. For each sample: phi ~ Dir(alpha * 1_K); stick-breaking fractions v_1 = phi_1,
v_k = phi_k / (prod_{j<k} (1 - v_j) + 1e-10); image 1 is the sample itself and image k >= 2 comes from a fresh
batch-wide permutation per k (a sample may draw itself, as in the official code).

* ``mixup``: x = sum_k phi_k x_k, y = sum_k phi_k onehot(y_k).
* ``cutmix``: nested boxes. R_0 is the whole image; box R_k lies inside R_{k-1} with sides
  round(side_{k-1} * sqrt(1 - v_k)) (round half to even) at a uniform integer offset where it fits (when the
  rounded box does not fit, it sits at R_{k-1}'s corner, clipped, as in the official code); image k+1 is pasted
  into R_k. The label weight of image k is its **visible** pixel share after rounding,
  (area R_{k-1} - area R_k) / HW, and area R_{K-1} / HW for the last one, so the weights sum to 1 exactly and
  repeated classes accumulate.
* ``placement="clipped"`` (K = 2 only) places the box as CutMix and timm do instead: a uniform center, the box
  clipped at the border, its side int(side * sqrt(1 - lambda)); the weights are again the visible shares.

With K = 2, phi_1 ~ Beta(alpha, alpha): Mixup and CutMix are the K = 2 cases.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

MixMode = Literal["mixup", "cutmix"]
Placement = Literal["inside", "clipped"]
PasteStrategy = Literal["auto", "gather", "boxes"]

# "auto" composes CutMix images by copying the boxes on a CPU from this many pixels per image up, and by one
# gather below it and on every other device: timed on 2 CPU cores (batch 64 and 256, K 2 and 5), the box copy
# was 1.3-6.7x faster from 96 px up and the gather up to 2x faster at 32 px, with 48-64 px in between
PASTE_BOXES_FROM_PIXELS = 64 * 64


def dirichlet_proportions(
    batch: int, k: int, alpha: float, generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """(B, K) proportions phi ~ Dir(alpha * 1_K), via normalized Gamma draws (generator-friendly)."""
    gamma = torch._standard_gamma(
        torch.full((batch, k), float(alpha), dtype=torch.float64), generator=generator
    )
    gamma = gamma.clamp_min(1e-300)
    return (gamma / gamma.sum(dim=1, keepdim=True)).to(device=device)


def stick_breaking(phi: torch.Tensor) -> torch.Tensor:
    """Fractions v with v_1 = phi_1 and v_k = phi_k / (prod_{j<k}(1 - v_j) + 1e-10), as the official code."""
    v = torch.empty_like(phi)
    remaining = torch.ones_like(phi[:, 0])
    for k in range(phi.shape[1]):
        v[:, k] = phi[:, k] / (remaining + 1e-10) if k else phi[:, k]
        remaining = remaining * (1 - v[:, k])
    return v


def _uniform_int(high: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One uniform integer in [0, high] per element (high >= 0), reproducible with ``generator``."""
    draws = torch.rand(high.shape, generator=generator, dtype=torch.float64).to(high.device)
    return torch.minimum((draws * (high + 1)).floor().long(), high)


def nested_boxes(
    v: torch.Tensor,
    height: int,
    width: int,
    generator: torch.Generator | None = None,
    placement: Placement = "inside",
) -> torch.Tensor:
    """(B, K-1, 4) integer boxes (top, left, bottom, right), box k inside box k-1 (``inside``), from v[:, :K-1]."""
    batch, k = v.shape
    boxes = torch.zeros(batch, max(k - 1, 0), 4, dtype=torch.long, device=v.device)
    top = torch.zeros(batch, dtype=torch.long, device=v.device)
    left = torch.zeros_like(top)
    bottom = torch.full_like(top, height)
    right = torch.full_like(top, width)
    for index in range(k - 1):
        ratio = torch.sqrt(torch.clamp(1 - v[:, index].double(), min=0.0))
        if placement == "clipped":
            cut_h, cut_w = (height * ratio).long(), (width * ratio).long()
            cy = _uniform_int(torch.full_like(top, height - 1), generator)
            cx = _uniform_int(torch.full_like(top, width - 1), generator)
            top, bottom = (cy - cut_h // 2).clamp(0, height), (cy + (cut_h + 1) // 2).clamp(0, height)
            left, right = (cx - cut_w // 2).clamp(0, width), (cx + (cut_w + 1) // 2).clamp(0, width)
        else:
            box_h, box_w = bottom - top, right - left
            cut_h = torch.round(box_h.double() * ratio).long()  # round half to even, like np.round
            cut_w = torch.round(box_w.double() * ratio).long()
            fits = (cut_h < box_h) & (cut_w < box_w)
            dy = torch.where(
                fits, _uniform_int((box_h - cut_h).clamp_min(0), generator), torch.zeros_like(top)
            )
            dx = torch.where(
                fits, _uniform_int((box_w - cut_w).clamp_min(0), generator), torch.zeros_like(top)
            )
            top, left = top + dy, left + dx
            bottom, right = top + torch.minimum(cut_h, box_h), left + torch.minimum(cut_w, box_w)
        boxes[:, index] = torch.stack([top, left, bottom, right], dim=1)
    return boxes


def box_layers(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, H, W) index of the image each pixel shows: 0 outside every box, k + 1 inside box k (later boxes on top).

    Built from per-box row and column bands in bytes, so the float images are touched once, by the gather in
    :func:`k_image_mix`, not once per box (pasting box by box with ``torch.where`` read and wrote every pixel of
    the batch K - 1 times: 3-6x slower than the official per-sample slice copies at 224 px on CPU).
    """
    rows = torch.arange(height, device=boxes.device).view(1, height)
    cols = torch.arange(width, device=boxes.device).view(1, width)
    layers = torch.zeros(boxes.shape[0], height, width, dtype=torch.uint8, device=boxes.device)
    for index in range(boxes.shape[1]):
        top, left, bottom, right = (boxes[:, index, i].unsqueeze(1) for i in range(4))
        in_rows = (rows >= top) & (rows < bottom)  # (B, H)
        in_cols = (cols >= left) & (cols < right)  # (B, W)
        inside = in_rows.unsqueeze(2) & in_cols.unsqueeze(1)
        layers.masked_fill_(inside, index + 1)
    return layers


def paste_boxes(images: torch.Tensor, partners: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """The CutMix composition of :func:`box_layers` + gather, by copying each box from its partner into a clone of
    the batch, box by box in nesting order (later boxes on top): only the boxes' pixels are read twice, which on a
    CPU beats touching every pixel through an index once the images are large (``PASTE_BOXES_FROM_PIXELS``)."""
    mixed = images.clone()
    for sample, (sources, sample_boxes) in enumerate(
        zip(partners[:, 1:].tolist(), boxes.tolist(), strict=True)
    ):
        for source, (top, left, bottom, right) in zip(sources, sample_boxes, strict=True):
            if bottom > top and right > left:
                mixed[sample, :, top:bottom, left:right] = images[source, :, top:bottom, left:right]
    return mixed


def gather_boxes(images: torch.Tensor, partners: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """The CutMix composition in one gather from a per-pixel source index (no Python loop over samples: the GPU
    path, and the faster one on a CPU for small images)."""
    batch, _, height, width = images.shape
    layers = box_layers(boxes, height, width).long().view(batch, -1)
    source = partners.gather(1, layers).view(batch, 1, height, width)  # the batch index each pixel shows
    return torch.gather(images, 0, source.expand_as(images))


def k_image_mix(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    k: int,
    alpha: float,
    mode: MixMode = "cutmix",
    generator: torch.Generator | None = None,
    placement: Placement = "inside",
    return_parts: bool = False,
    strategy: PasteStrategy = "auto",
):
    """Mix every image of (B, C, H, W) ``images`` with K-1 in-batch partners; soft targets (B, num_classes).

    Returns ``(mixed_images, soft_targets)``, plus ``(partners (B, K) indices, weights (B, K))`` with
    ``return_parts=True``. K = 1 returns the images and one-hot targets unchanged. ``strategy`` picks how CutMix
    images are composed (the same pixels either way): ``boxes`` (:func:`paste_boxes`), ``gather``
    (:func:`gather_boxes`), or ``auto``: boxes on a CPU from ``PASTE_BOXES_FROM_PIXELS`` pixels up, else gather.
    """
    if mode not in ("mixup", "cutmix"):
        raise ValueError(f"mixing mode must be mixup or cutmix, got {mode!r}")
    if strategy not in ("auto", "gather", "boxes"):
        raise ValueError(f"mixing strategy must be auto, gather or boxes, got {strategy!r}")
    if placement == "clipped" and k != 2:
        raise ValueError(
            "placement 'clipped' (CutMix / timm) is defined for k = 2 only; use 'inside' for K > 2"
        )
    batch, _, height, width = images.shape
    device = images.device
    partners = torch.empty(batch, k, dtype=torch.long, device=device)
    partners[:, 0] = torch.arange(batch, device=device)
    for index in range(1, k):
        partners[:, index] = torch.randperm(batch, generator=generator).to(device)
    if k == 1:
        weights = torch.ones(batch, 1, device=device, dtype=torch.float64)
        mixed = images
    else:
        phi = dirichlet_proportions(batch, k, alpha, generator, device)
        if mode == "mixup":
            weights = phi
            stacked = images[partners]  # (B, K, C, H, W)
            mixed = (weights.to(images.dtype).view(batch, k, 1, 1, 1) * stacked).sum(dim=1)
        else:
            boxes = nested_boxes(stick_breaking(phi), height, width, generator, placement)
            if strategy == "auto":
                large = device.type == "cpu" and height * width >= PASTE_BOXES_FROM_PIXELS
                strategy = "boxes" if large else "gather"
            mixed = (paste_boxes if strategy == "boxes" else gather_boxes)(images, partners, boxes)
            box_areas = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
            areas = torch.cat([torch.full((batch, 1), height * width, device=device), box_areas], dim=1)
            visible = torch.cat([areas[:, :-1] - areas[:, 1:], areas[:, -1:]], dim=1)
            weights = visible.double() / (height * width)
    targets = torch.zeros(batch, num_classes, dtype=torch.float64, device=device)
    targets.scatter_add_(1, labels[partners].long(), weights)
    targets = targets.to(torch.float32)
    if return_parts:
        return mixed, targets, partners, weights.float()
    return mixed, targets


def smooth_targets(targets: torch.Tensor, smoothing: float) -> torch.Tensor:
    """(1 - s) * targets + s / C."""
    return targets * (1 - smoothing) + smoothing / targets.shape[1] if smoothing else targets


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return F.one_hot(labels.long(), num_classes).float()
