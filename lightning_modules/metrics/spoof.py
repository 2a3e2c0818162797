"""Presentation-attack (spoof) metrics in the ISO/IEC 30107-3 style: APCER, BPCER, ACER and AUC.

* The threshold is the (1 - ``bpcer``) quantile of the genuine validation scores: no spoof is needed to set it.
* APCER: share of spoofs accepted as genuine (score <= threshold); BPCER: share of genuine captures rejected
  (score > threshold); ACER = (APCER + BPCER) / 2; AUC of the scores.
* Per display: that display's spoofs against every genuine capture; means over the displays unseen in training
  and over the seen ones; BPCER per genuine group (device, or kind: objects, flat prints) when there are several.

Example:
    >>> import torch
    >>> values = spoof_metrics(torch.tensor([0.1, 0.2, 0.9, 0.15]), torch.tensor([0, 0, 1, 1]), threshold=0.5)
    >>> values["apcer"], values["bpcer"], values["acer"]
    (0.5, 0.0, 0.25)
"""

from __future__ import annotations

import math

import torch

from lightning_modules.metrics.detection import auroc

SPOOF_METRICS = ("apcer", "bpcer", "acer", "auc")


def threshold_at_bpcer(genuine_scores: torch.Tensor, bpcer: float) -> float:
    """The score above which a share ``bpcer`` of genuine captures lies (their (1 - bpcer) quantile)."""
    if genuine_scores.numel() == 0:
        raise ValueError("no genuine validation captures to set the threshold on")
    return float(torch.quantile(genuine_scores.float(), 1.0 - bpcer))


def spoof_metrics(scores: torch.Tensor, labels: torch.Tensor, threshold: float) -> dict[str, float]:
    """APCER, BPCER, ACER and AUC (fractions; NaN where a class is absent)."""
    genuine, spoof = scores[labels == 0], scores[labels == 1]
    apcer = float((spoof <= threshold).float().mean()) if spoof.numel() else math.nan
    bpcer = float((genuine > threshold).float().mean()) if genuine.numel() else math.nan
    both = genuine.numel() and spoof.numel()
    return {
        "apcer": apcer,
        "bpcer": bpcer,
        "acer": (apcer + bpcer) / 2,
        "auc": auroc(scores, labels) if both else math.nan,
    }


def spoof_rows(
    scores: torch.Tensor, labels: torch.Tensor, groups: list[str], threshold: float, unseen: list[str]
) -> list[dict[str, object]]:
    """Table rows (metrics in %): every capture, each display's spoofs vs all genuine, means over unseen / seen,
    and each genuine group's BPCER."""
    rows: list[dict[str, object]] = []

    def row(name: str, values: dict[str, float], seen: str = "") -> None:
        rows.append({"group": name, "seen": seen} | {k: 100 * v for k, v in values.items()})

    row("all", spoof_metrics(scores, labels, threshold))
    displays = sorted({g for g, label in zip(groups, labels.tolist(), strict=True) if label == 1})
    per_display: dict[str, dict[str, float]] = {}
    genuine = labels == 0
    for display in displays:
        member = genuine | torch.tensor([g == display for g in groups], device=labels.device)
        per_display[display] = spoof_metrics(scores[member], labels[member], threshold)
        row(display, per_display[display], "no" if display in unseen else "yes")
    for name, chosen in (
        ("mean unseen", [d for d in displays if d in unseen]),
        ("mean seen", [d for d in displays if d not in unseen]),
    ):
        if chosen:
            row(name, {k: sum(per_display[d][k] for d in chosen) / len(chosen) for k in SPOOF_METRICS})
    sources = sorted({g for g, label in zip(groups, labels.tolist(), strict=True) if label == 0})
    if len(sources) > 1:  # BPCER per genuine group (device, or the stand-in's objects / flat prints)
        for source in sources:
            member = genuine & torch.tensor([g == source for g in groups], device=labels.device)
            bpcer = float((scores[member] > threshold).float().mean())
            row(f"genuine: {source}", {k: (bpcer if k == "bpcer" else math.nan) for k in SPOOF_METRICS})
    return rows
