"""Scaling of class-wise training losses (SCTL, Jung et al., ICML 2023) as a calibrator's fitting objective.

    L_c = mean CE over the samples of class c          (on the calibrated logits of the whole split)
    n   = normalize(detach(L))                          ND: z-score, MM: min-max, CM: mean-centered min-max
    w_c = beta * sigmoid(n_c / alpha) - beta / 2 + 1    (> 1 for classes worse than average)
    L   = sum_c w_c * L_c                               (``reduction="mean"`` divides by the class count)

(alpha, beta) start at (1, 1.5); the second evaluation fits them once with SLSQP, alpha in [0.1, ln(C)/2],
beta in [1.5, 2], minimizing the root sum over classes of
(l0_c - (beta * sigmoid(n_c / alpha) - beta / 2) * (l_c - l0_c) - mean l)^2, where l0 is the first evaluation's
loss vector and n, l the second's; they stay fixed afterwards. Unlike the official code, a class absent from
the split is left out of everything (the official code's mean over no samples is NaN), with one warning.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from scipy import optimize
from torch import nn

Normalization = Literal["ND", "MM", "CM"]
EPS = 1e-12


def normalize(losses: torch.Tensor, norm: Normalization) -> torch.Tensor:
    """ND: (l - mean) / std (unbiased); MM: (l - min) / (max - min); CM: (l - mean) / (max - min)."""
    if norm == "ND":
        spread = losses.std() if len(losses) > 1 else losses.new_tensor(0.0)
        return (losses - losses.mean()) / (spread + EPS)
    spread = losses.max() - losses.min() + EPS
    if norm == "MM":
        return (losses - losses.min()) / spread
    if norm == "CM":
        return (losses - losses.mean()) / spread
    raise ValueError(f"class-wise loss norm must be ND, MM or CM, got {norm!r}")


def scale_weights(normalized: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """``w = beta * sigmoid(n / alpha) - beta / 2 + 1``."""
    return beta * torch.sigmoid(normalized / alpha) - beta / 2 + 1


class ClasswiseScaledCrossEntropy(nn.Module):
    """The SCTL objective, stateful over the evaluations of one fit: call :meth:`reset` before each fit.

    Args:
        num_classes: C.
        norm: Normalization of the detached class-loss vector: ``ND`` (default), ``MM`` or ``CM``.
        reduction: ``sum`` over classes (the official code) or ``mean``.
        alpha: Initial alpha (1).
        beta: Initial beta (1.5).
    """

    def __init__(
        self,
        num_classes: int,
        norm: Normalization = "ND",
        reduction: Literal["sum", "mean"] = "sum",
        alpha: float = 1.0,
        beta: float = 1.5,
    ) -> None:
        super().__init__()
        normalize(torch.zeros(2), norm)  # validate now
        if reduction not in ("sum", "mean"):
            raise ValueError(f"class-wise loss reduction must be sum or mean, got {reduction!r}")
        self.num_classes, self.norm, self.reduction = num_classes, norm, reduction
        self.initial = (alpha, beta)
        self.reset()

    def reset(self) -> None:
        """Forget the previous fit: evaluation count, first-call losses, and (alpha, beta)."""
        self.calls = 0
        self.alpha, self.beta = self.initial
        self.first_losses: torch.Tensor | None = None
        self._warned = False

    def class_losses(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean CE per class present in ``labels`` (shape (P,)), and which classes those are."""
        per_sample = F.cross_entropy(logits.float(), labels, reduction="none")
        counts = torch.bincount(labels, minlength=self.num_classes)
        sums = torch.zeros(self.num_classes, device=logits.device).index_add(0, labels, per_sample)
        present = counts > 0
        if not present.all() and not self._warned:
            missing = (~present).nonzero().flatten().tolist()
            warnings.warn(
                f"class-wise loss: classes {missing} have no sample in the calibration split; they are left out",
                stacklevel=2,
            )
            self._warned = True
        return sums[present] / counts[present], present

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        losses, _ = self.class_losses(logits, labels)
        detached = losses.detach()
        normalized = normalize(detached, self.norm)
        if self.calls == 0:
            self.first_losses = detached.clone()
        elif self.calls == 1:
            self.alpha, self.beta = fit_alpha_beta(
                self.first_losses, detached, normalized, self.num_classes, self.initial
            )
        self.calls += 1
        weighted = scale_weights(normalized, self.alpha, self.beta) * losses
        return weighted.sum() if self.reduction == "sum" else weighted.mean()


def fit_alpha_beta(
    first: torch.Tensor,
    losses: torch.Tensor,
    normalized: torch.Tensor,
    num_classes: int,
    start: tuple[float, float],
) -> tuple[float, float]:
    """SLSQP on the official objective, within alpha in [0.1, ln(C)/2] and beta in [1.5, 2]."""
    first_np, losses_np, normalized_np = (t.double().cpu().numpy() for t in (first, losses, normalized))
    mean = losses_np.mean()

    def objective(x: np.ndarray) -> float:
        alpha, beta = x
        scaled = beta / (1 + np.exp(-normalized_np / alpha)) - beta / 2
        return float(np.sqrt(((first_np - scaled * (losses_np - first_np) - mean) ** 2).sum()))

    bounds = ((0.1, max(math.log(num_classes) / 2, 0.1)), (1.5, 2.0))
    x0 = np.clip(
        np.array(start, dtype=float), [b[0] for b in bounds], [b[1] for b in bounds]
    )  # C < 8: alpha0 > ln(C)/2
    result = optimize.minimize(objective, x0, method="SLSQP", bounds=bounds, options={"disp": False})
    return float(result.x[0]), float(result.x[1])
