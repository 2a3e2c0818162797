"""What every real-vs-fake detector shares: one-logit BCE, metrics per group, the test table and predictions.

A detector subclasses :class:`BinaryDetectionRoutine` and implements ``logits(batch) -> (B,)``; optionally
``pictures(batch)`` for TensorBoard (see :class:`callbacks.visualization.TensorBoardPictures`). Training,
validation, test (with the paper-style table in the run folder) and predict (rows for
:class:`callbacks.predictions.PredictionCSVWriter`) come from here, so methods differ only in their network.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from datamodules.batch import SplitInfo, batch_size_of
from lightning_modules.metrics.detection import DETECTION_METRICS, GroupedBinaryMetrics, mean_logit_score
from lightning_modules.outputs.tables import (
    MEAN,
    MEAN_SEEN,
    MEAN_UNSEEN,
    POOLED,
    summary_rows,
)
from lightning_modules.routines.base import EvaluationRoutine


class BinaryDetectionRoutine(EvaluationRoutine):
    """Base of binary real (0) / fake (1) detectors with one output logit.

    Args:
        lr: Learning rate of the default Adam optimizer (a config's ``optimizer:`` block replaces it).
        threshold: Fake-probability threshold for ACC and the predicted label.
    """

    num_classes = 2  # real, fake: what soft-target callbacks (mixing) build their targets over

    def __init__(self, lr: float = 1e-4, threshold: float = 0.5) -> None:
        super().__init__()
        self.lr = lr
        self.threshold = threshold
        self.val_metrics = GroupedBinaryMetrics(threshold=threshold)
        self.test_metrics = GroupedBinaryMetrics(threshold=threshold)

    # --------------------------------------------------------------------------------- to implement
    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        """One fake-vs-real logit per sample, shape (B,)."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------- training
    def loss(self, logits: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        """BCE on the logit in float32 (soft ``target`` when a mixing callback wrote one, else ``label``)."""
        target = batch.get("target")
        target = target[:, -1] if target is not None and target.ndim == 2 else batch["label"]
        return F.binary_cross_entropy_with_logits(logits.float(), target.float())

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        if batch_size_of(batch) == 0:  # every file of this batch was unreadable (and skipped)
            return None
        logits = self.logits(batch)
        loss = self.loss(logits, batch)
        acc = ((logits.detach() > _logit(self.threshold)).long() == batch["label"]).float().mean()
        size = batch_size_of(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log("train/acc", acc, prog_bar=True, batch_size=size)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr, betas=(0.9, 0.999))

    # ---------------------------------------------------------------------------------- evaluation
    def _eval_step(self, batch: dict[str, Any], metrics: GroupedBinaryMetrics, stage: str) -> None:
        if batch_size_of(batch) == 0:
            return
        logits = self.logits(batch)
        self.log(f"{stage}/loss", self.loss(logits, batch), batch_size=batch_size_of(batch), sync_dist=True)
        probs = torch.sigmoid(logits.float())
        metrics.update(
            probs, batch["label"], batch.get("group"), batch.get("video_index"), batch.get("sample_index")
        )

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, self.val_metrics, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, self.test_metrics, "test")

    def on_validation_epoch_start(self) -> None:
        info = self.split_info("val")
        self.val_metrics.set_groups(list(info.groups), info.real_group)

    def on_test_epoch_start(self) -> None:
        info = self.split_info("test")
        self.test_metrics.set_groups(list(info.groups), info.real_group)

    def on_validation_epoch_end(self) -> None:
        self._log_results(self.val_metrics, "val")

    def on_test_epoch_end(self) -> None:
        rows = self._log_results(self.test_metrics, "test")
        if self.trainer.is_global_zero and rows:
            self.write_table(rows, DETECTION_METRICS, f"{type(self).__name__} — test", stem=self.results_name)

    def _log_results(self, metrics: GroupedBinaryMetrics, stage: str) -> list[dict[str, object]]:
        """Compute, log ``<stage>/<metric>`` and ``<stage>/<metric>/<group>``, reset; return the table rows."""
        if not metrics.update_count:
            return []
        per_group = metrics.compute()
        metrics.reset()
        # seen/unseen is about test generators; validation groups are categories of the seen generator
        info = self.split_info("test") if stage == "test" else SplitInfo()
        rows = summary_rows(per_group, DETECTION_METRICS, seen=info.seen, controls=info.controls)
        names = {POOLED: None, MEAN: "mean", MEAN_SEEN: "mean_seen", MEAN_UNSEEN: "mean_unseen"}
        values: dict[str, float] = {}
        for row in rows:
            suffix = names.get(str(row["group"]), row["group"])
            for metric in DETECTION_METRICS:
                value = float(row[metric]) / 100.0
                if not math.isnan(value):
                    values[f"{stage}/{metric}" + (f"/{suffix}" if suffix else "")] = value
        headline = {k: values.pop(k) for k in (f"{stage}/acc", f"{stage}/ap") if k in values}
        self.log_dict(headline, prog_bar=True)
        self.log_dict(values)
        return rows

    @property
    def results_name(self) -> str:
        """File stem of the test table (a variant of a method may write beside the main one)."""
        return "results"

    # ------------------------------------------------------------------------------------- predict
    def predict_scores(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"fake_prob": torch.sigmoid(self.logits(batch).float())}

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """A row per input; for clips of videos (unless the data's ``per_clip`` is true) a row per video, written
        once its last clip is scored: σ of its mean clip logit, as the test table scores videos (a video whose
        last clip a ``limit_predict_batches`` cuts off gets no row)."""
        empty = batch_size_of(batch) == 0
        probs = torch.empty(0) if empty else self.predict_scores(batch)["fake_prob"]
        clips = self._clips_per_video()
        if clips is not None:
            return self._finished_videos(batch, probs.detach().cpu(), clips)
        paths = [] if empty else batch["path"]
        return {"path": paths, "fake_prob": probs, "pred_label": (probs > self.threshold).long()}

    def on_predict_start(self) -> None:
        self._pending_clips: dict[int, list[float]] = {}
        self._video_clip_counts: dict[int, int] | None = None  # read from this predict run's data
        self._per_video: bool | None = None  # whether rows are per video, read once

    def _clips_per_video(self) -> dict[int, int] | None:
        """Video index -> its number of clips in the predicted split, when predictions are per video."""
        if self._per_video is None:
            info = self.split_info("predict")
            self._per_video = not info.per_clip
            if info.per_clip:
                return None
            if self.trainer.world_size > 1:
                raise ValueError(
                    "per-video predictions need one process (the sampler splits a video's clips over the ranks): "
                    "set --data.init_args.per_clip true or --trainer.devices 1"
                )
            self._video_clip_counts = {i: clips for i, (_, clips) in enumerate(info.videos) if clips}
            self._video_folders = [folder for folder, _ in info.videos]
        return self._video_clip_counts

    def _finished_videos(
        self, batch: dict[str, Any], probs: torch.Tensor, clips: dict[int, int]
    ) -> dict[str, Any]:
        """Rows for the videos whose last clip is in this batch (clips arrive in order, video by video)."""
        finished = []
        for video, prob in zip(
            batch.get("video_index", torch.empty(0)).tolist(), probs.tolist(), strict=True
        ):
            self._pending_clips.setdefault(video, []).append(prob)
            if len(self._pending_clips[video]) == clips[video]:
                finished.append(video)
        scores = [mean_logit_score(torch.tensor(self._pending_clips.pop(v))) for v in finished]
        fake_prob = torch.tensor(scores, dtype=torch.float32)
        return {
            "path": [self._video_folders[v] for v in finished],
            "clips": [clips[v] for v in finished],
            "fake_prob": fake_prob,
            "pred_label": (fake_prob > self.threshold).long(),
        }


def _logit(p: float) -> float:
    return math.log(p / (1 - p))
