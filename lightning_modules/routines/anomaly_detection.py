"""What every anomaly detector here shares: evaluation, thresholds, result tables, pictures and predictions.

A detector subclasses :class:`AnomalyDetectionRoutine` and implements ``anomaly_map(batch) ->``
:class:`~lightning_modules.components.anomaly_output.AnomalyOutput` (maps (B, 1, H, W), image scores (B,); higher =
more anomalous). A detector whose state is computed from the training images (a memory bank, a likelihood
reference, map quantiles) adds :class:`~lightning_modules.routines.fitted_state.FittedStateMixin`. The routine then

* collects maps, masks, scores, labels and defect types over validation and test (gathered across ranks);
* logs ``<stage>/image_auroc``, ``<stage>/pixel_auroc`` and ``<stage>/pro`` (AUPRO to FPR 0.3), and at test
  the same per defect type (that type's images against the normal ones), written as ``results.csv/md``;
* keeps, in the checkpoint, an image and a pixel threshold set from normal images only, never from a test label:
  the highest image score and the highest pixel score over the real normal training images (the datamodule's
  ``normal_images_dataloader``), scored as test images are, after each validation and, when missing, at test and
  predict; an image (a pixel) above it is called anomalous. They decide ``pred_label`` in ``predictions.csv``
  (whose ``threshold_from`` column says so) and the thresholded masks of the pictures, never a metric (all
  metrics are threshold-free);
* draws ``pictures/`` (validation) and ``test_pictures/`` (test): images, ground-truth masks, anomaly maps on one
  color scale, thresholded masks.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from datamodules.batch import NormalImages, batch_size_of
from lightning_modules.components.anomaly_output import AnomalyOutput
from lightning_modules.metrics.anomaly import ANOMALY_METRICS, anomaly_metrics, anomaly_rows
from lightning_modules.metrics.collectors import AnomalyMapCollector
from lightning_modules.outputs.pictures import heat_picture
from lightning_modules.routines.base import EvaluationRoutine


class AnomalyDetectionRoutine(EvaluationRoutine):
    """Evaluation, thresholds, tables, pictures and predictions shared by anomaly detectors.

    Args:
        pro_fpr_limit: Upper FPR of the AUPRO integral (0.3 in MVTec's protocol).
    """

    num_classes = 2

    def __init__(self, pro_fpr_limit: float = 0.3) -> None:
        super().__init__()
        if not 0 < pro_fpr_limit <= 1:
            raise ValueError(f"pro_fpr_limit must be in (0, 1], got {pro_fpr_limit}")
        self.pro_fpr_limit = pro_fpr_limit
        for name in ("image_threshold", "pixel_threshold", "map_low", "map_high"):
            self.register_buffer(name, torch.tensor(math.nan))
        self.val_maps = AnomalyMapCollector()
        self.test_maps = AnomalyMapCollector()

    def anomaly_map(self, batch: dict[str, Any]) -> AnomalyOutput:
        """Anomaly maps (B, 1, H, W) at the input size and image scores (B,); higher = more anomalous."""
        raise NotImplementedError

    # ---------------------------------------------------------------------------------- evaluation
    def _collect(self, batch: dict[str, Any], collector: AnomalyMapCollector) -> None:
        if batch_size_of(batch) == 0:
            return
        out = self.anomaly_map(batch)
        mask = batch.get("mask", torch.zeros_like(out.anomaly_map))
        collector.update(out.pred_score.float(), batch["label"], batch.get("group"), out.anomaly_map, mask)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._collect(batch, self.val_maps)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._collect(batch, self.test_maps)

    def on_validation_epoch_start(self) -> None:
        self.val_maps.set_groups(list(self.split_info("test").groups))

    def on_test_epoch_start(self) -> None:
        self.test_maps.set_groups(list(self.split_info("test").groups))

    def on_predict_start(self) -> None:
        if math.isnan(float(self.image_threshold)):  # an older checkpoint, or a fit without validation
            self.set_thresholds_from_normals()

    THRESHOLD_FROM = "the highest score of the real normal training images"

    def _set_display_scale(self, result: dict[str, Any]) -> None:
        """The heat maps' color scale (pictures only): the evaluated set's lowest to highest pixel score."""
        self.map_low.fill_(float(result["maps"].min()))
        self.map_high.fill_(float(result["maps"].max()))

    @torch.no_grad()
    def set_thresholds_from_normals(self) -> bool:
        """Image and pixel thresholds: the highest image score and the highest pixel score over the datamodule's
        real normal training images, scored as test images are. False (thresholds left as they are) when the
        datamodule has no such images (a predict on a folder without the dataset)."""
        data = self.data_if(NormalImages)
        if data is None:
            return False
        loader = data.normal_images_dataloader()
        if loader is None:
            return False
        was_training = self.training
        self.eval()
        scores, peaks = [], []
        for batch in loader:
            if batch_size_of(batch):
                out = self.anomaly_map(self.transfer_batch_to_device(batch, self.device, 0))
                scores.append(out.pred_score.float())
                peaks.append(out.anomaly_map.float().flatten(1).amax(dim=1))
        self.train(was_training)
        if not scores:
            return False
        self.image_threshold.fill_(float(torch.cat(scores).max()))
        self.pixel_threshold.fill_(float(torch.cat(peaks).max()))
        return True

    def on_validation_epoch_end(self) -> None:
        if not self.val_maps.update_count:
            return
        result = self.val_maps.compute()
        self.val_maps.reset()
        if self.trainer.sanity_checking:
            return
        values = anomaly_metrics(
            result["scores"], result["labels"], result["maps"], result["masks"], self.pro_fpr_limit
        )
        self.log_dict({f"val/{k}": v for k, v in values.items() if not math.isnan(v)}, prog_bar=True)
        self._set_display_scale(result)
        self.set_thresholds_from_normals()
        if self.trainer.is_global_zero:
            self._log_pictures("pictures")

    def on_test_epoch_end(self) -> None:
        if not self.test_maps.update_count:
            return
        result = self.test_maps.compute()
        self.test_maps.reset()
        if math.isnan(float(self.map_low)):  # no validation ran: the pictures' scale from the test maps
            self._set_display_scale(result)
        if math.isnan(float(self.image_threshold)):  # no validation ran: from the normals now
            self.set_thresholds_from_normals()
        groups = self.test_maps.group_names  # set from the datamodule at epoch start, normal first
        normal = groups[0] if groups else "good"
        rows = anomaly_rows(
            result["scores"],
            result["labels"],
            result["maps"],
            result["masks"],
            result["groups"],
            normal,
            self.pro_fpr_limit,
        )
        for row in rows:
            suffix = "" if row["group"] == "all" else f"/{row['group']}"
            values = {f"test/{k}{suffix}": float(row[k]) / 100 for k in ANOMALY_METRICS}
            self.log_dict({k: v for k, v in values.items() if not math.isnan(v)}, prog_bar=not suffix)
        if self.trainer.is_global_zero:
            self._log_pictures("test_pictures")
            self.write_table(rows, ANOMALY_METRICS, self._table_title(), digits=1)

    def _table_title(self) -> str:
        where = self.split_info("test").title or "/, full-shot"
        return (
            f"{type(self).__name__} — {where}: image AUROC, pixel AUROC, AUPRO (FPR <= {self.pro_fpr_limit})"
        )

    # ---------------------------------------------------------------------------------------- pictures
    def _log_pictures(self, tag: str, per_kind: int = 4) -> None:
        """Normal test images (left) and one anomaly per defect type (right), four rows of pictures."""
        found = self.test_dataset_records()
        if found is None:
            return
        dataset, records = found
        chosen = [i for i, r in enumerate(records) if r.label == 0][:per_kind]
        first_of_each = {r.group: i for i, r in reversed(list(enumerate(records))) if r.label == 1}
        chosen += sorted(first_of_each.values())[:per_kind]
        batch = self.picture_batch(dataset, chosen)
        if batch is not None:
            self.log_pictures(tag, self.anomaly_pictures(batch), nrow=len(chosen))

    @torch.no_grad()
    def map_scale(self, maps: torch.Tensor) -> tuple[float, float]:
        """The heat maps' color scale: the evaluated set's lowest to highest score, else these maps' own."""
        low, high = float(self.map_low), float(self.map_high)
        if math.isnan(low):
            return float(maps.min()), float(maps.max())
        return low, high

    def anomaly_pictures(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Image, ground truth, anomaly map (one color scale: the evaluated set's lowest to highest score)
        and the map at or above the pixel threshold (white)."""
        maps = self.anomaly_map(batch).anomaly_map
        low, high = self.map_scale(maps)
        threshold = float(self.pixel_threshold)
        # above the highest normal pixel score: anomalous
        predicted = (maps > threshold).float() if not math.isnan(threshold) else torch.zeros_like(maps)
        mask = batch.get("mask", torch.zeros_like(maps))
        return {
            "image": batch["image"],
            "ground_truth": mask.expand(-1, 3, -1, -1),
            "anomaly_map": heat_picture(maps, low, high),
            "predicted_mask": predicted.expand(-1, 3, -1, -1),
        }

    # ------------------------------------------------------------------------------------------ predict
    def predict_scores(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        out = self.anomaly_map(batch)
        return {"anomaly_map": out.anomaly_map.float(), "anomaly_score": out.pred_score.float()}

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """A row per image (score, decision at the stored threshold) and its heat-map overlay, in the predict's
        picture folder at the image's path (``predictions/<relative path>.png``; the image under the map, on the
        test set's scale)."""
        predicted = self.predict_scores(batch)
        scores = predicted["anomaly_score"]
        known = not math.isnan(float(self.image_threshold))
        rows: dict[str, Any] = {
            "path": batch["path"],
            "anomaly_score": scores.float(),
            # above the highest normal training score: anomalous (-1: no threshold known)
            "pred_label": (scores > self.image_threshold).long()
            if known
            else torch.full_like(scores, -1).long(),
            "threshold_from": [self.THRESHOLD_FROM if known else "none: fit, or predict with the dataset"]
            * len(scores),
        }
        if "label" in batch:
            rows["label"] = batch["label"]
        rows["overlay"] = self._write_overlays(batch, predicted["anomaly_map"])
        return rows

    def _write_overlays(self, batch: dict[str, Any], maps: torch.Tensor) -> list[str]:
        from torchvision.utils import save_image

        low, high = self.map_scale(maps)
        names = []
        overlays = 0.5 * batch["image"].float().clamp(0, 1) + 0.5 * heat_picture(maps, low, high)
        for path, overlay in zip(batch["path"], overlays, strict=True):
            target = self.prediction_picture(path)
            save_image(overlay.cpu(), target)
            names.append(str(target.relative_to(self.run_dir())))
        return names
