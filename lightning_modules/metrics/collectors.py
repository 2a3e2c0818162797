"""Metrics that keep every score of an epoch: the scores a ranking metric (AP, AUROC, AUPRO, ECE) needs at once.

Each is a torchmetrics ``Metric`` whose states reduce by ``cat``, so under DDP ``compute`` sees the samples of
every rank. :class:`GroupedScores` keeps (score, label, group) rows with their optional video and sample indices;
the detection metrics, the spoof and the anomaly collectors build on it. :class:`LogitCollector` keeps whole
logit rows for the calibration metrics.

Example:
    >>> import torch
    >>> scores = GroupedScores(["a", "b"])
    >>> scores.update(torch.tensor([0.2, 0.9]), torch.tensor([0, 1]), ["a", "b"])
    >>> scores.rows()[2]
    ['a', 'b']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchmetrics import Metric


def cat_state(state: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """A ``cat`` state as one tensor (torchmetrics leaves it a list on one process, a tensor after syncing)."""
    if isinstance(state, torch.Tensor):
        return state
    return torch.cat(state) if state else torch.empty(0)


class GroupedScores(Metric):
    """(score, label, group) of every sample, plus a video index (``units``) and a dataset index (``samples``).

    Group names map to indices through ``group_names``, the same list on every rank (the DataModule gives it);
    with no list, every row's group is -1 (pooled metrics only). A name outside the list is an error naming it.
    """

    full_state_update = False

    def __init__(self, group_names: Sequence[str] = ()) -> None:
        super().__init__()
        self.set_groups(group_names)
        for name in ("probs", "labels", "group_ids", "unit_ids", "sample_ids"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def set_groups(self, group_names: Sequence[str]) -> None:
        """Replace the group list (call before the first ``update`` of an epoch)."""
        self.group_names = list(group_names)
        self._index = {name: i for i, name in enumerate(self.group_names)}

    def update(
        self,
        probs: torch.Tensor,
        labels: torch.Tensor,
        groups: Sequence[str] | None = None,
        units: torch.Tensor | None = None,
        samples: torch.Tensor | None = None,
    ) -> None:
        labels = labels.detach().long().flatten()
        if groups is None or not self.group_names:
            ids = torch.full_like(labels, -1)
        else:
            unknown = sorted({g for g in groups if g not in self._index})
            if unknown:
                raise KeyError(f"groups {unknown} are not among the DataModule's groups {self.group_names}")
            ids = torch.tensor([self._index[g] for g in groups], device=labels.device)
        missing = torch.full_like(labels, -1)
        self.probs.append(probs.detach().float().flatten())
        self.labels.append(labels)
        self.group_ids.append(ids)
        self.unit_ids.append(missing if units is None else units.detach().long().flatten())
        self.sample_ids.append(missing if samples is None else samples.detach().long().flatten())

    def rows(self) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """(scores, labels, group names) of every row collected ("" where a row has no group)."""
        names = [self.group_names[i] if i >= 0 else "" for i in cat_state(self.group_ids).tolist()]
        return cat_state(self.probs), cat_state(self.labels), names

    def compute(self) -> Any:
        return self.rows()


class AnomalyMapCollector(GroupedScores):
    """(image score, label, defect type) as :class:`GroupedScores`, plus every anomaly map and mask."""

    def __init__(self) -> None:
        super().__init__()
        self.add_state("maps", default=[], dist_reduce_fx="cat")
        self.add_state("masks", default=[], dist_reduce_fx="cat")

    def update(self, scores, labels, groups, maps, masks) -> None:  # type: ignore[override]
        super().update(scores, labels, groups)
        self.maps.append(maps.detach().float())
        self.masks.append(masks.detach().to(torch.uint8))

    def compute(self) -> dict[str, Any]:  # type: ignore[override]
        scores, labels, groups = self.rows()
        return {
            "scores": scores,
            "labels": labels,
            "maps": cat_state(self.maps),
            "masks": cat_state(self.masks),
            "groups": groups,
        }


class LogitCollector(Metric):
    """Keeps every (logits, labels) pair of an epoch, gathered across ranks, for metrics that need them all."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("logits", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        self.logits.append(logits.detach().float())
        self.labels.append(labels.detach().long())

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        return cat_state(self.logits), cat_state(self.labels)
