"""What every presentation-attack (spoof) detector shares: a spoof score per capture, a threshold fixed on
genuine validation captures, and ISO/IEC 30107-3-style metrics overall and per display, written as a table.

A detector subclasses :class:`SpoofDetectionRoutine` and implements ``score(batch) -> (B,)`` (higher = more
spoof-like); optionally ``score_map(batch) -> (B, 1, h, w)`` for TensorBoard pictures.

* The threshold is the (1 - ``bpcer_target``) quantile of the genuine validation scores, set after every
  validation epoch and kept in the checkpoint: no spoof is needed to set it, and ``test`` reuses it.
* APCER: share of spoofs accepted as genuine (score <= threshold); BPCER: share of genuine captures rejected
  (score > threshold); ACER = (APCER + BPCER) / 2; AUC of the scores. Per display: that display's spoofs
  against every genuine capture; means over the displays unseen in training and over the seen ones.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from torchvision.utils import make_grid

from datamodules.base import batch_size_of, collate_skipping_bad
from lightning_modules.common.metrics import GroupedBinaryMetrics, _cat, auroc
from lightning_modules.common.results import write_result_table

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
    return {"apcer": apcer, "bpcer": bpcer, "acer": (apcer + bpcer) / 2,
            "auc": auroc(scores, labels) if both else math.nan}  # fmt: skip


def spoof_rows(
    scores: torch.Tensor, labels: torch.Tensor, groups: list[str], threshold: float, unseen: list[str]
) -> list[dict[str, object]]:
    """Table rows (metrics in %): every capture, each display's spoofs vs all genuine, means over unseen / seen."""
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
    for name, chosen in (("mean unseen", [d for d in displays if d in unseen]),
                         ("mean seen", [d for d in displays if d not in unseen])):  # fmt: skip
        if chosen:
            row(name, {k: sum(per_display[d][k] for d in chosen) / len(chosen) for k in SPOOF_METRICS})
    return rows


class ScoreCollector(GroupedBinaryMetrics):
    """Keeps (score, label, group) of every capture, gathered across ranks; ``compute`` returns them."""

    def compute(self) -> tuple[torch.Tensor, torch.Tensor, list[str]]:  # type: ignore[override]
        scores, labels, ids = (_cat(state) for state in (self.probs, self.labels, self.group_ids))
        names = [self.group_names[i] if i >= 0 else "" for i in ids.tolist()]
        return scores, labels, names


class SpoofDetectionRoutine(L.LightningModule):
    """Evaluation, threshold and tables shared by anti-spoofing detectors (label 0 genuine, 1 spoof).

    Args:
        bpcer_target: Share of genuine validation captures allowed above the threshold (0.05: BPCER 5 %).
    """

    num_classes = 2

    def __init__(self, bpcer_target: float = 0.05) -> None:
        super().__init__()
        if not 0 < bpcer_target < 1:
            raise ValueError(f"bpcer_target must be in (0, 1), got {bpcer_target}")
        self.bpcer_target = bpcer_target
        self.register_buffer("threshold", torch.tensor(math.nan))
        self.val_scores = ScoreCollector()
        self.test_scores = ScoreCollector()

    def score(self, batch: dict[str, Any]) -> torch.Tensor:
        """Spoof score per capture, shape (B,), higher = more likely a spoof."""
        raise NotImplementedError

    # ---------------------------------------------------------------------------------- evaluation
    def _collect(self, batch: dict[str, Any], collector: ScoreCollector) -> None:
        if batch_size_of(batch) == 0:
            return
        collector.update(self.score(batch).float(), batch["label"], batch.get("group"))

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._collect(batch, self.val_scores)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._collect(batch, self.test_scores)

    def on_validation_epoch_start(self) -> None:
        self.val_scores.set_groups(self._groups("val"))

    def on_test_epoch_start(self) -> None:
        self.test_scores.set_groups(self._groups("test"))

    def on_validation_epoch_end(self) -> None:
        if not self.val_scores.update_count:
            return
        scores, labels, _ = self.val_scores.compute()
        self.val_scores.reset()
        if self.trainer.sanity_checking:
            return
        self.threshold.fill_(threshold_at_bpcer(scores[labels == 0], self.bpcer_target))
        values = spoof_metrics(scores, labels, float(self.threshold))
        self.log("val/threshold", float(self.threshold))
        self.log("val/genuine_score", float(scores[labels == 0].mean()))
        if (labels == 1).any():  # spoofs in validation (supervised baselines): ACER and AUC at this threshold
            self.log_dict({"val/acer": values["acer"], "val/auc": values["auc"]}, prog_bar=True)

    def on_test_epoch_end(self) -> None:
        if not self.test_scores.update_count:
            return
        scores, labels, groups = self.test_scores.compute()
        self.test_scores.reset()
        if math.isnan(float(self.threshold)):
            raise ValueError("the checkpoint has no threshold: run fit (its validation sets it) before test")
        rows = spoof_rows(scores.cpu(), labels.cpu(), groups, float(self.threshold), self._unseen())
        for row in rows:
            suffix = "" if row["group"] == "all" else "/" + str(row["group"]).replace(" ", "_")
            values = {f"test/{k}{suffix}": float(row[k]) / 100 for k in SPOOF_METRICS}
            self.log_dict({k: v for k, v in values.items() if not math.isnan(v)}, prog_bar=not suffix)
        if self.trainer.is_global_zero:
            self._log_test_pictures()
            out = Path(self.trainer.log_dir or self.trainer.default_root_dir)
            title = (f"{type(self).__name__} — test, threshold {float(self.threshold):.4f} "
                     f"(BPCER {100 * self.bpcer_target:.0f} % on genuine validation captures)")  # fmt: skip
            markdown = write_result_table(rows, SPOOF_METRICS, out, title=title, digits=2)
            self.print("\n" + markdown + f"(written to {out / 'results.csv'} and results.md)")

    def _groups(self, split: str) -> list[str]:
        datamodule = getattr(self.trainer, "datamodule", None)
        return datamodule.groups_for(split) if hasattr(datamodule, "groups_for") else []

    def _unseen(self) -> list[str]:
        datamodule = getattr(self.trainer, "datamodule", None)
        return datamodule.unseen_displays() if hasattr(datamodule, "unseen_displays") else []

    def _log_test_pictures(self, per_class: int = 4) -> None:
        """Genuine captures (top row) beside spoofs (bottom row) of the test set, with their score maps, under
        ``test_pictures/`` — validation may hold no spoof at all (``genuine_only``)."""
        datamodule = getattr(self.trainer, "datamodule", None)
        dataset = getattr(datamodule, "datasets", {}).get("test")
        loggers = [lg for lg in self.trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if dataset is None or not hasattr(dataset, "records") or not loggers:
            return
        chosen = [i for i, r in enumerate(dataset.records) if r.label == 0][:per_class]
        chosen += [i for i, r in enumerate(dataset.records) if r.label == 1][:: max(1, len(dataset) // 64)][
            :per_class
        ]
        batch = collate_skipping_bad([dataset[i] for i in chosen])
        if batch_size_of(batch) == 0:
            return
        batch = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        for name, images in self.pictures(batch).items():
            grid = make_grid(images.detach().float().clamp(0, 1).cpu(), nrow=per_class, padding=2)
            for logger in loggers:
                logger.experiment.add_image(f"test_pictures/{name}", grid, global_step=self.global_step)

    # ------------------------------------------------------------------------------- predict, pictures
    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        scores = self.score(batch).float()
        rows: dict[str, Any] = {"path": batch["path"], "spoof_score": scores,
                                "pred_label": (scores > self.threshold).long()}  # fmt: skip
        if "label" in batch:
            rows["label"] = batch["label"]
        return rows

    def pictures(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """RGB, depth, and where the detector has one, its spoof-score map (bright = spoof-like)."""
        pictures = {"rgb": batch["image"][:8], "depth": batch["depth"][:8].expand(-1, 3, -1, -1)}
        score_map = getattr(self, "score_map", None)
        if callable(score_map):
            with torch.no_grad():
                maps = score_map({k: v[:8] for k, v in batch.items() if hasattr(v, "shape")})
            # one fixed scale (score 0 black, 1 or more white) so genuine and spoof maps compare
            size = tuple(batch["image"].shape[-2:])
            maps = F.interpolate(maps.float().clamp(0, 1), size=size, mode="nearest")
            pictures["score_map"] = maps.expand(-1, 3, -1, -1)
        return pictures
