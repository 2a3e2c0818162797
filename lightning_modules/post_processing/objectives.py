"""The objectives a post-hoc calibrator is fitted with, as the SCTL paper compares them, and the optimizer
schedule the official code fits each with.

* ``nll``: cross-entropy; ``cl``: SCTL's class-wise scaled loss (``classwise_loss.py``), both fitted with one
  LBFGS run (lr 0.02, max_iter 1000; PTS: Adam 0.02 for 1000 iterations);
* ``ls``: cross-entropy with label smoothing 0.05; ``fl``: focal loss with gamma 3 (Lin et al.; the weight
  (1 - p_t)^gamma taken without gradient, as the official code does), both fitted in three stages, lr 0.005 /
  0.003 / 0.001 for 200 / 400 / 400 iterations (LBFGS, or Adam for PTS), the official ``*_schedule`` optimizers.

Example:
    >>> import torch
    >>> focal = make_objective("fl", num_classes=3)
    >>> logits, labels = torch.tensor([[4.0, 0.0, 0.0]]), torch.tensor([0])
    >>> bool(focal(logits, labels) < torch.nn.functional.cross_entropy(logits, labels))  # easy samples count less
    True
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.post_processing.classwise_loss import ClasswiseScaledCrossEntropy, Normalization

ObjectiveName = Literal["nll", "cl", "ls", "fl"]
OBJECTIVES: tuple[str, ...] = ("nll", "cl", "ls", "fl")
# the official schedule of label smoothing and focal loss: lr 0.005, 0.003, 0.001 for 200, 400, 400 of 1,000 steps
STAGED = [(0.005, 0.2), (0.003, 0.4), (0.001, 0.4)]


class FocalLoss(nn.Module):
    """Mean of -(1 - p_t)^gamma log p_t over the samples, p_t the probability of the true class."""

    def __init__(self, gamma: float = 3.0) -> None:
        super().__init__()
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits.float(), dim=1).gather(1, labels.view(-1, 1)).view(-1)
        return (-((1 - log_p.detach().exp()) ** self.gamma) * log_p).mean()


def make_objective(
    name: ObjectiveName, num_classes: int, norm: Normalization = "ND", reduction: str = "sum"
) -> nn.Module:
    """A fresh objective (the class-wise loss keeps state across one fit: never share one between fits)."""
    if name == "nll":
        return nn.CrossEntropyLoss()
    if name == "cl":
        return ClasswiseScaledCrossEntropy(num_classes, norm, reduction)
    if name == "ls":
        return nn.CrossEntropyLoss(label_smoothing=0.05)
    if name == "fl":
        return FocalLoss(3.0)
    raise ValueError(f"calibration objective must be one of {OBJECTIVES}, got {name!r}")


def fitting_schedule(
    name: ObjectiveName, iterations: int = 1000, lr: float = 0.02
) -> list[tuple[float, int]]:
    """(learning rate, iterations) per optimizer stage, as the official code fits ``name``; a staged schedule
    keeps its stages' shares of ``iterations``."""
    if name in ("ls", "fl"):
        return [(rate, max(1, round(share * iterations))) for rate, share in STAGED]
    return [(lr, iterations)]
