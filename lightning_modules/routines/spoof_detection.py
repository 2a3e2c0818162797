"""What every presentation-attack (spoof) detector shares: a spoof score per capture, a threshold fixed on
genuine validation captures, and APCER / BPCER / ACER / AUC overall and per display, written as a table.

A detector subclasses :class:`SpoofDetectionRoutine` and implements ``score(batch) -> (B,)`` (higher = more
spoof-like); optionally ``score_map(batch) -> (B, 1, h, w)`` for TensorBoard pictures. The threshold is the
(1 - ``bpcer_target``) quantile of the genuine validation scores, set after every validation epoch and kept in the
checkpoint, so ``test`` reuses it (the metrics: :mod:`lightning_modules.metrics.spoof`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from datamodules.batch import batch_size_of, first_samples
from lightning_modules.metrics.collectors import GroupedScores
from lightning_modules.metrics.spoof import SPOOF_METRICS, spoof_metrics, spoof_rows, threshold_at_bpcer
from lightning_modules.routines.base import EvaluationRoutine


class SpoofDetectionRoutine(EvaluationRoutine):
    """Evaluation, threshold and tables shared by anti-spoofing detectors (label 0 genuine, 1 spoof).

    Args:
        bpcer_target: Share of genuine validation captures allowed above the threshold (0.05: BPCER 5 %).
    """

    num_classes = 2
    export_input_keys = ("image", "depth")

    def __init__(self, bpcer_target: float = 0.05) -> None:
        super().__init__()
        if not 0 < bpcer_target < 1:
            raise ValueError(f"bpcer_target must be in (0, 1), got {bpcer_target}")
        self.bpcer_target = bpcer_target
        self.register_buffer("threshold", torch.tensor(math.nan))
        self.val_scores = GroupedScores()
        self.test_scores = GroupedScores()

    def score(self, batch: dict[str, Any]) -> torch.Tensor:
        """Spoof score per capture, shape (B,), higher = more likely a spoof."""
        raise NotImplementedError

    # ---------------------------------------------------------------------------------- evaluation
    def _collect(self, batch: dict[str, Any], collector: GroupedScores) -> None:
        if batch_size_of(batch) == 0:
            return
        collector.update(self.score(batch).float(), batch["label"], batch.get("group"))

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._collect(batch, self.val_scores)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._collect(batch, self.test_scores)

    def on_validation_epoch_start(self) -> None:
        self.val_scores.set_groups(list(self.split_info("val").groups))

    def on_test_epoch_start(self) -> None:
        self.test_scores.set_groups(list(self.split_info("test").groups))

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
        unseen = list(self.split_info("test").unseen)
        rows = spoof_rows(scores.cpu(), labels.cpu(), groups, float(self.threshold), unseen)
        for row in rows:
            suffix = "" if row["group"] == "all" else "/" + str(row["group"]).replace(" ", "_")
            values = {f"test/{k}{suffix}": float(row[k]) / 100 for k in SPOOF_METRICS}
            self.log_dict({k: v for k, v in values.items() if not math.isnan(v)}, prog_bar=not suffix)
        if self.trainer.is_global_zero:
            self._log_test_pictures()
            title = (
                f"{type(self).__name__} — test, threshold {float(self.threshold):.4f} "
                f"(BPCER {100 * self.bpcer_target:.0f} % on genuine validation captures)"
            )
            self.write_table(rows, SPOOF_METRICS, title, digits=2)

    def _log_test_pictures(self, per_class: int = 4) -> None:
        """Genuine captures (top row) beside spoofs (bottom row) of the test set, with their score maps, under
        ``test_pictures/`` — validation may hold no spoof at all (``genuine_only``)."""
        found = self.test_dataset_records()
        if found is None:
            return
        dataset, records = found
        chosen = [i for i, r in enumerate(records) if r.label == 0][:per_class]
        spoofs = [i for i, r in enumerate(records) if r.label == 1]
        chosen += spoofs[:: max(1, len(dataset) // 64)][:per_class]
        batch = self.picture_batch(dataset, chosen)
        if batch is not None:
            self.log_pictures("test_pictures", self.pictures(batch), nrow=per_class)

    # ------------------------------------------------------------------------------- predict, pictures
    def predict_scores(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"spoof_score": self.score(batch).float()}

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        scores = self.predict_scores(batch)["spoof_score"]
        rows: dict[str, Any] = {
            "path": batch["path"],
            "spoof_score": scores,
            "pred_label": (scores > self.threshold).long(),
        }
        if "label" in batch:
            rows["label"] = batch["label"]
        return rows

    def pictures(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """RGB, depth, and where the detector has one, its spoof-score map (bright = spoof-like)."""
        pictures = {"rgb": batch["image"][:8], "depth": batch["depth"][:8].expand(-1, 3, -1, -1)}
        score_map = getattr(self, "score_map", None)
        if callable(score_map):
            with torch.no_grad():
                maps = score_map(first_samples(batch, 8))
            # one fixed scale (score 0 black, 1 or more white) so genuine and spoof maps compare
            size = tuple(batch["image"].shape[-2:])
            maps = F.interpolate(maps.float().clamp(0, 1), size=size, mode="nearest")
            pictures["score_map"] = maps.expand(-1, 3, -1, -1)
        return pictures
