"""What every anomaly network returns: one named type, so no caller depends on the order of a tuple."""

from __future__ import annotations

from typing import NamedTuple

import torch


class AnomalyOutput(NamedTuple):
    """An anomaly network's scores for a batch of images; higher = more anomalous.

    Attributes:
        anomaly_map: (B, 1, H, W) per-pixel scores at the input size.
        pred_score: (B,) one score per image.
    """

    anomaly_map: torch.Tensor
    pred_score: torch.Tensor
