"""What every multi-class classifier shares: accuracy and calibration metrics, the calibrator hook, predictions.

A classifier subclasses :class:`ClassificationRoutine` and implements ``logits(batch) -> (B, C)``. Validation and
test log accuracy, top-5 accuracy, NLL, ECE, adaptive ECE, class-wise ECE, MCE and Brier score as
``<stage>/<metric>``; when a calibrator is installed (``set_calibrator``, by :class:`callbacks.PostHocCalibration`),
test and predict use calibrated logits while ``test_step`` still returns the raw ones for the calibration
callback. Soft targets written by a mixing callback (``batch["target"]``) replace the labels in the loss.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from datamodules.batch import batch_size_of
from lightning_modules.metrics.calibration import calibration_report
from lightning_modules.metrics.collectors import LogitCollector
from lightning_modules.routines.base import EvaluationRoutine

TEST_TABLE_METRICS = ("acc", "acc_top5", "err", "nll", "ece", "aece", "cwece", "mce", "brier")


def classification_loss(
    logits: torch.Tensor, batch: dict[str, Any], label_smoothing: float = 0.0
) -> torch.Tensor:
    """Soft-target cross-entropy when the batch has ``target`` (mixing callbacks), else CE on ``label``."""
    target = batch.get("target")
    if target is not None:
        return -(target.float() * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()
    return F.cross_entropy(logits.float(), batch["label"], label_smoothing=label_smoothing)


class ClassificationRoutine(EvaluationRoutine):
    """Evaluation, calibration hooks and predictions shared by every multi-class classifier.

    Subclasses implement ``logits(batch) -> (B, C)``.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.num_classes = num_classes
        # a buffer, so it is in checkpoints and val/err_best survives a resume
        self.register_buffer("best_val_acc", torch.tensor(0.0))
        self.val_logits = LogitCollector()
        self.test_logits = LogitCollector()
        self.class_names: list[str] = []  # the training data's, kept in checkpoints for predict

    def on_fit_start(self) -> None:
        self.class_names = list(self.split_info("train").class_names)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["class_names"] = list(self.class_names)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.class_names = list(checkpoint.get("class_names") or [])

    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        raise NotImplementedError

    # ---------------------------------------------------------------------------------- calibration
    def set_calibrator(self, calibrator: nn.Module | None) -> None:
        """Install a post-hoc calibrator used by test and predict (kept out of the state dict on purpose: the
        calibration callback stores it in its own checkpoint state)."""
        self.__dict__["_calibrator"] = calibrator.to(self.device).eval() if calibrator is not None else None

    @property
    def calibrator(self) -> nn.Module | None:
        return self.__dict__.get("_calibrator")

    def calibrated_logits(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw logits, logits after the calibrator if one is installed)."""
        raw = self.logits(batch).float()
        return raw, (self.calibrator(raw) if self.calibrator is not None else raw)

    # ------------------------------------------------------------------------------------ evaluation
    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if batch_size_of(batch) == 0:
            return
        self.val_logits.update(self.logits(batch), batch["label"])

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor] | None:
        if batch_size_of(batch) == 0:
            return None
        raw, calibrated = self.calibrated_logits(batch)
        self.test_logits.update(calibrated, batch["label"])
        return {"logits": raw.detach(), "label": batch["label"]}

    def on_validation_epoch_end(self) -> None:
        self._log_report(self.val_logits, "val")

    def on_test_epoch_end(self) -> None:
        self._log_report(self.test_logits, "test")

    def _log_report(self, collector: LogitCollector, stage: str) -> None:
        if not collector.update_count:
            return
        logits, labels = collector.compute()
        collector.reset()
        report = calibration_report(logits, labels)
        top5 = min(5, logits.shape[1])
        report["acc_top5"] = (
            (logits.topk(top5, dim=1).indices == labels[:, None]).any(dim=1).float().mean().item()
        )
        report["err"] = 1.0 - report["acc"]
        if stage == "val" and not self.trainer.sanity_checking:
            self.best_val_acc.fill_(max(float(self.best_val_acc), report["acc"]))
            report["err_best"] = 1.0 - float(self.best_val_acc)  # the mixing papers report the best epoch's
        self.log_dict({f"{stage}/{k}": report[k] for k in ("acc", "nll", "ece")}, prog_bar=True)
        self.log_dict({f"{stage}/{k}": v for k, v in report.items() if k not in ("acc", "nll", "ece")})
        if stage == "test" and self.trainer.is_global_zero:
            self._write_test_table(report, len(labels))

    def _write_test_table(self, report: dict[str, float], n_samples: int) -> None:
        """``results.csv`` / ``results.md`` beside the checkpoint: rates in %, NLL and Brier as they are."""
        row: dict[str, object] = {"group": "test", "seen": ""}
        row |= {k: (v if k in ("nll", "brier") else 100.0 * v) for k, v in report.items()}
        state = "calibrated" if self.calibrator is not None else "uncalibrated"
        title = f"{type(self).__name__} — test, {n_samples} samples, {state}"
        self.write_table([row], TEST_TABLE_METRICS, title, digits=2, note="; nll, brier not in %")

    top_k = 3  # classes named per row of predictions.csv

    def predict_scores(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Class probabilities, after the calibrator when one is installed."""
        return {"probs": self.calibrated_logits(batch)[1].softmax(dim=1)}

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """The predicted class and its probability, then the next ones (``top_k`` in all) by name: the names of
        the data the model was trained on, which its checkpoint keeps (a folder of your photos has none)."""
        probs = self.predict_scores(batch)["probs"]
        confidence, prediction = probs.max(dim=1)
        rows: dict[str, Any] = {"path": batch.get("path", [""] * len(prediction))}
        rows |= {"pred_label": prediction, "confidence": confidence}
        names = self.class_names or list(self.split_info("predict").class_names)
        if len(names) != probs.shape[1]:  # a checkpoint from before class names were kept: indices
            names = [str(c) for c in range(probs.shape[1])]
        values, classes = probs.topk(min(self.top_k, probs.shape[1]), dim=1)
        for rank in range(classes.shape[1]):
            rows[f"top{rank + 1}_class"] = [names[int(c)] for c in classes[:, rank]]
            rows[f"top{rank + 1}_prob"] = values[:, rank]
        if "label" in batch:  # known for test images, -1 for unlabelled ones
            rows["label"] = batch["label"]
        return rows
