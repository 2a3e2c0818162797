"""Binary detection metrics overall and per group (generator, category, display), synchronised across ranks.

Detection papers report ACC and AP per test generator and their mean; AP and AUC need every score of a group
at once, so the metric keeps (score, label, group) and computes at epoch end. It is a torchmetrics ``Metric``
with ``cat`` reduction, so DDP gathers the states from every rank before computing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torchmetrics.functional.classification import binary_accuracy, binary_auroc, binary_average_precision

from lightning_modules.metrics.collectors import GroupedScores, cat_state

DETECTION_METRICS = ("acc", "ap", "auc", "real_acc", "fake_acc")


class GroupedBinaryMetrics(GroupedScores):
    """ACC (at ``threshold``), AP, AUC, real ACC and fake ACC, pooled and per group.

    ``update(probs, labels, groups)`` takes fake probabilities in [0, 1], labels in {0, 1} and group names (see
    :class:`GroupedScores`). ``compute()`` returns ``{None: pooled, "<group>": {...}, ...}``; a metric that is
    undefined for a group (AP with no fakes, real ACC with no reals) is NaN.

    Two options serve video detection: ``units`` in ``update`` (a video index per clip) makes every metric
    video-level, each video scored σ(mean clip logit); ``set_groups(..., real_group=name)`` scores every other
    group together with that group's real samples (FF++: each manipulation against the originals) and gives
    the real group no row of its own.

    ``samples`` in ``update`` (the dataset index of each row) lets ``compute`` count each sample once: under DDP
    the distributed sampler pads the last batch with repeats, which would otherwise weigh twice (in a video's
    mean, too).
    """

    def __init__(self, group_names: Sequence[str] = (), threshold: float = 0.5) -> None:
        super().__init__(group_names)
        self.threshold = threshold
        self.real_group: str | None = None

    def set_groups(self, group_names: Sequence[str], real_group: str | None = None) -> None:
        """Replace the group list (call before the first ``update`` of an epoch)."""
        super().set_groups(group_names)
        self.real_group = real_group if real_group in self._index else None

    def compute(self) -> dict[str | None, dict[str, float]]:
        probs, labels, ids, units, samples = (
            cat_state(s) for s in (self.probs, self.labels, self.group_ids, self.unit_ids, self.sample_ids)
        )
        if len(samples) and bool((samples >= 0).all()):  # each sample once (DDP padding repeats some)
            keep = first_occurrences(samples)
            probs, labels, ids, units = probs[keep], labels[keep], ids[keep], units[keep]
        if len(units) and bool((units >= 0).all()):
            probs, labels, ids = per_unit(probs, labels, ids, units)
        results: dict[str | None, dict[str, float]] = {None: binary_scores(probs, labels, self.threshold)}
        if self.real_group:
            reals = ids == self._index[self.real_group]
        else:
            reals = torch.zeros_like(ids, dtype=torch.bool)
        for index, name in enumerate(self.group_names):
            if name == self.real_group:
                continue
            member = ids == index
            if member.any():
                member = member | reals
                results[name] = binary_scores(probs[member], labels[member], self.threshold)
        return results


def auroc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Binary AUROC of any real-valued scores (higher = positive). torchmetrics reads scores outside [0, 1] as
    logits and squashes them with a sigmoid, which in float32 ties every score above ~17 (a PatchCore distance,
    a flow's negative log-likelihood, EfficientAD's normalized map); their dense ranks scaled into [0, 1] keep
    the order and the ties, and AUROC depends on nothing else."""
    scores = scores.detach().flatten().double().cpu()
    _, ranks = torch.unique(scores, return_inverse=True)
    return float(binary_auroc(ranks.double() / max(1, int(ranks.max())), labels.flatten().long().cpu()))


def first_rows(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(inverse, first): each row's index among the distinct values (sorted), and each distinct value's first row."""
    unique, inverse = torch.unique(values, return_inverse=True)
    first = torch.full((len(unique),), len(values), dtype=torch.long, device=values.device).scatter_reduce_(
        0, inverse, torch.arange(len(values), device=values.device), reduce="amin"
    )
    return inverse, first


def first_occurrences(values: torch.Tensor) -> torch.Tensor:
    """Indices of the first row of each distinct value, in row order."""
    return first_rows(values)[1].sort().values


def per_unit(
    probs: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor, units: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One row per unit (video): σ of the mean logit of its rows (clips), with its label and group. Logits are
    recovered from the probabilities (:func:`recovered_logits`)."""
    inverse, first = first_rows(units)  # per unit, in the order of the sums below
    logits = recovered_logits(probs)
    sums = torch.zeros(len(first), dtype=torch.float64, device=probs.device).index_add_(0, inverse, logits)
    counts = torch.zeros_like(sums).index_add_(0, inverse, torch.ones_like(logits))
    return torch.sigmoid(sums / counts).float(), labels[first], ids[first]


def recovered_logits(probs: torch.Tensor) -> torch.Tensor:
    """The logits of sigmoid probabilities, in float64, clamped at |logit| <= 16.1 (float32 saturation)."""
    return torch.logit(probs.double().clamp(1e-7, 1 - 1e-7))


def mean_logit_score(probs: torch.Tensor) -> float:
    """One video's score from its clips' probabilities: σ of their mean logit, as :func:`per_unit` scores a unit.

    >>> round(mean_logit_score(torch.tensor([0.5, 0.9, 0.1])), 6)
    0.5
    """
    return float(torch.sigmoid(recovered_logits(probs).mean()))


def binary_scores(probs: torch.Tensor, labels: torch.Tensor, threshold: float = 0.5) -> dict[str, float]:
    """ACC, AP, AUC, real ACC and fake ACC of one set of scores (NaN where a class is absent).

    A score counts as "fake" when it is above ``threshold`` (sigma > 0.5 in Wang et al.), as in torchmetrics.
    """
    nan = math.nan
    if probs.numel() == 0:
        return dict.fromkeys(DETECTION_METRICS, nan)
    has_both = bool((labels == 0).any() and (labels == 1).any())
    reals, fakes = labels == 0, labels == 1
    return {
        "acc": binary_accuracy(probs, labels, threshold=threshold).item(),
        "ap": binary_average_precision(probs, labels).item() if has_both else nan,
        "auc": binary_auroc(probs, labels).item() if has_both else nan,
        "real_acc": (probs[reals] <= threshold).float().mean().item() if reals.any() else nan,
        "fake_acc": (probs[fakes] > threshold).float().mean().item() if fakes.any() else nan,
    }
