"""One classification module for many classification methods, and its twin that reads precomputed logits.

A method that only changes the data (long-tailed CIFAR), the targets (mixing callbacks) or the post-processing
(calibration callbacks) is a config on :class:`ImageClassifierModule`, not a new module (torch-uncertainty's
routine pattern). Validation and test log accuracy, top-5 accuracy, NLL, ECE, adaptive ECE, class-wise ECE, MCE
and Brier score as ``<stage>/<metric>``; when a calibrator is installed (``set_calibrator``), test and predict
use calibrated logits while ``test_step`` still returns the raw ones for the calibration callback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from datamodules.base import batch_size_of
from lightning_modules.common.backbones import Normalize, create_backbone
from lightning_modules.common.calibration_metrics import LogitCollector, calibration_report
from lightning_modules.common.results import write_result_table

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
TEST_TABLE_METRICS = ("acc", "acc_top5", "err", "nll", "ece", "aece", "cwece", "mce", "brier")


def input_normalizer(name: str) -> nn.Module:
    """The input normalisation a classifier applies to [0, 1] images: ``cifar``, ``imagenet`` or ``none``."""
    normalizers = {
        "cifar": lambda: Normalize(CIFAR_MEAN, CIFAR_STD),
        "imagenet": Normalize,
        "none": nn.Identity,
    }
    if name not in normalizers:
        raise ValueError(f"normalization must be cifar, imagenet or none, got {name!r}")
    return normalizers[name]()


def classification_loss(
    logits: torch.Tensor, batch: dict[str, Any], label_smoothing: float = 0.0
) -> torch.Tensor:
    """Soft-target cross-entropy when the batch has ``target`` (mixing callbacks), else CE on ``label``."""
    target = batch.get("target")
    if target is not None:
        return -(target.float() * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()
    return F.cross_entropy(logits.float(), batch["label"], label_smoothing=label_smoothing)


class ClassifierRoutine(L.LightningModule):
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
            report["err_best"] = 1.0 - float(
                self.best_val_acc
            )  # the mixing papers report the best epoch's error
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
        out_dir = Path(self.trainer.log_dir or self.trainer.default_root_dir)
        markdown = write_result_table([row], TEST_TABLE_METRICS, out_dir, title=title, digits=2)
        self.print(
            "\n" + markdown + f"(written to {out_dir / 'results.csv'} and results.md; nll, brier not in %)"
        )

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        _, calibrated = self.calibrated_logits(batch)
        probs = calibrated.softmax(dim=1)
        confidence, prediction = probs.max(dim=1)
        rows: dict[str, Any] = {"path": batch.get("path", [""] * len(prediction))}
        rows |= {"pred_label": prediction, "confidence": confidence}
        if "label" in batch:  # known for test images, -1 for unlabelled ones
            rows["label"] = batch["label"]
        return rows


class ImageClassifierModule(ClassifierRoutine):
    """A timm (or CIFAR-style) backbone trained with cross-entropy; soft targets when a mixing callback wrote them.

    Args:
        backbone: timm model name, or ``cifar_resnet110``, ``cifar_wrn28_10``, ``cifar_densenet40``...
        num_classes: Classes (linked from the datamodule).
        pretrained: Hub weights for the backbone.
        pretrained_path: Local weights file.
        normalization: Input normalisation: ``cifar``, ``imagenet`` or ``none``.
        label_smoothing: Cross-entropy label smoothing (hard targets only).
        lr: SGD learning rate (a config's ``optimizer:`` block replaces this whole recipe).
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        nesterov: Nesterov momentum.
        milestones: Epochs, as fractions of ``max_epochs``, where the learning rate is multiplied by ``gamma``.
        gamma: Learning-rate factor at each milestone.
        warmup_epochs: Linear warm-up from lr / 10 over these epochs (ResNet-110 diverges without one).
        drop_path_rate: Stochastic depth (ResNet-110-SD: 0.5).
    """

    def __init__(
        self,
        backbone: str = "cifar_resnet110",
        num_classes: int = 10,
        pretrained: bool = False,
        pretrained_path: str | None = None,
        normalization: str = "cifar",
        label_smoothing: float = 0.0,
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        nesterov: bool = False,
        milestones: list[float] | None = None,
        gamma: float = 0.1,
        warmup_epochs: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__(num_classes)
        self.save_hyperparameters()
        self.normalize = input_normalizer(normalization)
        extra = {"drop_path_rate": drop_path_rate} if drop_path_rate else {}
        self.backbone = create_backbone(
            backbone, pretrained=pretrained, pretrained_path=pretrained_path, num_classes=num_classes, **extra
        )

    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.backbone(self.normalize(batch["image"]))

    def loss(self, logits: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        return classification_loss(logits, batch, self.hparams.label_smoothing)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        size = batch_size_of(batch)
        if size == 0:
            return None
        logits = self.logits(batch)
        loss = self.loss(logits, batch)
        accuracy = (logits.detach().argmax(dim=1) == batch["label"]).float().mean()
        self.log_dict({"train/loss": loss, "train/acc": accuracy}, prog_bar=True, batch_size=size)
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        """SGD with a per-step schedule: linear warm-up from lr / 10, then step decays at the milestones."""
        optimizer = torch.optim.SGD(
            self.parameters(),
            lr=self.hparams.lr,
            momentum=self.hparams.momentum,
            weight_decay=self.hparams.weight_decay,
            nesterov=self.hparams.nesterov,
        )
        epochs = max(self.trainer.max_epochs or 1, 1)
        steps_per_epoch = max(int(self.trainer.estimated_stepping_batches) // epochs, 1)
        warmup = self.hparams.warmup_epochs * steps_per_epoch
        milestones = [round(m * epochs) * steps_per_epoch for m in (self.hparams.milestones or [])]

        def factor(step: int) -> float:
            decay = self.hparams.gamma ** sum(step >= m for m in milestones)
            return decay * (0.1 + 0.9 * min(step / warmup, 1.0)) if warmup else decay

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class PrecomputedLogitsModule(ClassifierRoutine):
    """A classifier whose logits were computed elsewhere (``batch["logits"]``): calibration without a network.

    ``fit`` has nothing to train; with :class:`callbacks.PostHocCalibration` it fits and saves the calibrator.

    Args:
        num_classes: Classes (linked from the datamodule).
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__(num_classes)
        self.save_hyperparameters()

    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        logits = batch["logits"]
        if logits.ndim != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(f"expected logits of shape (B, {self.num_classes}), got {tuple(logits.shape)}")
        return logits

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Nothing to train: ``fit`` passes over the calibration logits so calibration callbacks can fit."""
        return None

    def configure_optimizers(self) -> None:
        return None
