"""Calibration metrics of a classifier's logits: accuracy, NLL, Brier, ECE, MCE, adaptive ECE, class-wise ECE.

torchmetrics' ``CalibrationError`` gives ECE and MCE with equal-width bins only; the calibration papers also
report adaptive (equal-mass) and class-wise ECE, so all four come from one binning routine here, checked
against torchmetrics in the tests. Bins are (lower, upper], as in the SCTL code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CALIBRATION_METRICS = ("acc", "nll", "ece", "aece", "cwece", "mce", "brier")


def binned_gaps(
    confidences: torch.Tensor, correct: torch.Tensor, edges: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per bin (lower, upper]: |mean confidence - accuracy| and the bin's share of the samples."""
    confidences = confidences.contiguous()  # class-wise ECE passes probability columns
    index = torch.bucketize(confidences, edges[1:-1], right=False)  # (e_i, e_{i+1}] -> i
    bins = len(edges) - 1
    count = torch.bincount(index, minlength=bins).float()
    confidence_sum = torch.bincount(index, weights=confidences.double(), minlength=bins)
    correct_sum = torch.bincount(index, weights=correct.double(), minlength=bins)
    safe = count.clamp_min(1).double()
    gaps = ((confidence_sum - correct_sum) / safe).abs().float()
    return gaps, count / max(len(confidences), 1)


def expected_calibration_error(
    probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15, norm: str = "l1"
) -> torch.Tensor:
    """Top-label ECE (``l1``) or MCE (``max``) with ``n_bins`` equal-width bins, as a fraction."""
    confidences, predictions = probs.max(dim=1)
    edges = torch.linspace(0, 1, n_bins + 1, device=probs.device)
    gaps, weights = binned_gaps(confidences, (predictions == labels).float(), edges)
    return gaps.max() if norm == "max" else (gaps * weights).sum()


def adaptive_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> torch.Tensor:
    """Top-label ECE with equal-mass bins (each holds about the same number of samples)."""
    confidences, predictions = probs.max(dim=1)
    order = confidences.sort().values
    positions = torch.linspace(0, len(order) - 1, n_bins + 1, device=probs.device).round().long()
    edges = order[positions].clone()
    edges[0], edges[-1] = 0.0, 1.0
    gaps, weights = binned_gaps(confidences, (predictions == labels).float(), edges)
    return (gaps * weights).sum()


def classwise_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> torch.Tensor:
    """Mean over classes of each class's ECE on its own probability column (Kull et al.'s class-wise ECE)."""
    edges = torch.linspace(0, 1, n_bins + 1, device=probs.device)
    errors = []
    for c in range(probs.shape[1]):
        gaps, weights = binned_gaps(probs[:, c], (labels == c).float(), edges)
        errors.append((gaps * weights).sum())
    return torch.stack(errors).mean()


def calibration_report(logits: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> dict[str, float]:
    """Every metric in ``CALIBRATION_METRICS`` for (N, C) logits and (N,) labels; rates as fractions."""
    logits, labels = logits.float(), labels.long()
    probs = logits.softmax(dim=1)
    one_hot = F.one_hot(labels, probs.shape[1]).float()
    return {
        "acc": (probs.argmax(dim=1) == labels).float().mean().item(),
        "nll": F.cross_entropy(logits, labels).item(),
        "ece": expected_calibration_error(probs, labels, n_bins).item(),
        "aece": adaptive_calibration_error(probs, labels, n_bins).item(),
        "cwece": classwise_calibration_error(probs, labels, n_bins).item(),
        "mce": expected_calibration_error(probs, labels, n_bins, norm="max").item(),
        "brier": ((probs - one_hot) ** 2).sum(dim=1).mean().item(),
    }
