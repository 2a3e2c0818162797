"""Anomaly-detection metrics: image AUROC, pixel AUROC, the per-region overlap PRO / AUPRO, and the F1-optimal
threshold that decides predicted labels and masks (no metric uses a threshold).

PRO (Bergmann et al., MVTec AD, IJCV 2021) weights every connected defect region equally, however small: at a
threshold, a region's overlap is the share of its pixels above the threshold; PRO is the mean over all regions
of the test set; the false-positive rate is over all normal pixels. AUPRO integrates PRO over FPR in
[0, ``fpr_limit``] (0.3) and divides by the limit, so 1 is perfect. Computed exactly as the MVTec evaluation
code does: one sort of all pixel scores, each region pixel adding 1 / (n_regions * region size) to PRO and each
normal pixel 1 / n_normal to FPR, tied scores collapsed to one curve point, the curve closed with (0, 0) and
(1, 1), the trapezoid cut at the limit by linear interpolation.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage

from lightning_modules.metrics.detection import auroc

ANOMALY_METRICS = ("image_auroc", "pixel_auroc", "pro")


def pro_curve(maps: torch.Tensor, masks: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, PRO) over every distinct threshold, from (N, H, W) scores and {0, 1} masks; starts at (0, 0)."""
    shape = (len(maps), *maps.shape[-2:])
    scores = maps.detach().float().cpu().numpy().reshape(shape)
    truth = masks.detach().cpu().numpy().reshape(shape).astype(bool)
    weights = np.zeros(truth.shape, np.float64)
    regions = [ndimage.label(m, structure=np.ones((3, 3)))[:2] for m in truth]  # 8-connected, per image
    n_regions = sum(count for _, count in regions)
    n_normal = int((~truth).sum())
    if n_regions == 0 or n_normal == 0:
        raise ValueError("PRO needs at least one defect region and one normal pixel")
    for index, (labels, count) in enumerate(regions):
        if count:
            sizes = np.bincount(labels.ravel())
            weights[index] = np.where(labels > 0, 1.0 / (n_regions * sizes[labels]), 0.0)
    pro_step = weights.ravel()
    fpr_step = (~truth).ravel() / n_normal
    order = np.argsort(-scores.ravel(), kind="stable")
    sorted_scores = scores.ravel()[order]
    fpr = np.cumsum(fpr_step[order])
    pro = np.cumsum(pro_step[order])
    last_of_tie = np.append(np.diff(sorted_scores) != 0, True)
    fpr, pro = np.clip(fpr[last_of_tie], 0, 1), np.clip(pro[last_of_tie], 0, 1)
    return np.concatenate([[0.0], fpr, [1.0]]), np.concatenate([[0.0], pro, [1.0]])


def area_up_to(x: np.ndarray, y: np.ndarray, limit: float) -> float:
    """Trapezoid area under y(x) for x in [0, limit], y interpolated linearly at the limit (x ascending)."""
    inside = x <= limit
    xs, ys = x[inside], y[inside]
    if xs[-1] < limit:
        after = int(np.argmax(x > limit))
        y_at = y[after - 1] + (y[after] - y[after - 1]) * (limit - x[after - 1]) / (x[after] - x[after - 1])
        xs, ys = np.append(xs, limit), np.append(ys, y_at)
    return float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2))


def aupro(maps: torch.Tensor, masks: torch.Tensor, fpr_limit: float = 0.3) -> float:
    """Normalized area under the PRO curve up to ``fpr_limit`` (NaN without a defect region or normal pixel)."""
    try:
        fpr, pro = pro_curve(maps, masks)
    except ValueError:
        return math.nan
    return area_up_to(fpr, pro, fpr_limit) / fpr_limit


def anomaly_metrics(
    image_scores: torch.Tensor,
    labels: torch.Tensor,
    maps: torch.Tensor,
    masks: torch.Tensor,
    fpr_limit: float = 0.3,
) -> dict[str, float]:
    """Image AUROC, pixel AUROC and AUPRO of one set of images (fractions; NaN where a class is absent)."""
    labels = labels.long().cpu()
    both = bool((labels == 0).any() and (labels == 1).any())
    pixels = masks.flatten().long().cpu()
    pixel_both = bool((pixels == 0).any() and (pixels == 1).any())
    return {
        "image_auroc": auroc(image_scores, labels) if both else math.nan,
        "pixel_auroc": auroc(maps, pixels) if pixel_both else math.nan,
        "pro": aupro(maps, masks, fpr_limit) if pixel_both else math.nan,
    }


def anomaly_rows(
    image_scores: torch.Tensor,
    labels: torch.Tensor,
    maps: torch.Tensor,
    masks: torch.Tensor,
    groups: list[str],
    normal: str,
    fpr_limit: float = 0.3,
) -> list[dict[str, object]]:
    """Table rows in %: all test images, then each defect type's images against the normal ones."""
    rows: list[dict[str, object]] = []

    def row(name: str, member: torch.Tensor) -> None:
        values = anomaly_metrics(image_scores[member], labels[member], maps[member], masks[member], fpr_limit)
        rows.append({"group": name, "seen": ""} | {k: 100 * v for k, v in values.items()})

    row("all", torch.ones(len(labels), dtype=torch.bool))
    is_normal = torch.tensor([g == normal for g in groups])
    for defect in sorted(set(groups) - {normal}):
        row(defect, is_normal | torch.tensor([g == defect for g in groups]))
    return rows
