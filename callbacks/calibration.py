"""Post-hoc calibration as a callback: fit a calibrator on held-out logits, apply it at test and predict.

Works with any module that exposes ``logits(batch) -> (B, C)``, ``num_classes`` and ``set_calibrator(module)``,
trained with a datamodule that has ``calibration_dataloader()`` (a split the network never trained on). The
network stays frozen: only the calibrator's few parameters are fitted, on the whole split at once.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from callbacks.calibration_report import compare_calibrators
from datamodules.batch import CalibrationSplit, data_as
from datamodules.logits_files import save_logits_file
from lightning_modules.metrics.calibration import calibration_report
from lightning_modules.outputs.pictures import reliability_diagram
from lightning_modules.outputs.run_outputs import log_image, run_dir
from lightning_modules.post_processing.calibrators import (
    CALIBRATORS,
    Calibrator,
    CalibratorChoice,
    calibrate,
    make_calibrator,
)
from lightning_modules.post_processing.classwise_loss import Normalization
from lightning_modules.post_processing.objectives import OBJECTIVES, ObjectiveName

log = logging.getLogger(__name__)


class PostHocCalibration(Callback):
    """Fit ``calibrator`` with ``objective`` on the calibration split; apply it at test and predict.

    When: at the end of ``fit`` (then ``calibrated.ckpt`` is saved beside ``last.ckpt``, holding the calibrator
    in this callback's state), and at the start of ``test`` / ``predict`` if no calibrator was fitted or loaded
    from the checkpoint. At the end of ``test`` it logs every metric before and after as
    ``test/<metric>/uncalibrated`` and ``test/<metric>/calibrated``, draws reliability diagrams to TensorBoard,
    and with ``compare: true`` also fits every calibrator with every objective on the same split and writes the
    table ``calibration.csv`` / ``calibration.md`` (ECE, adaptive ECE, class-wise ECE, accuracy in %; NLL).

    Args:
        calibrator: a :class:`~lightning_modules.post_processing.calibrators.Calibrator` by ``class_path`` (its
            ``init_args`` without the class count, which the network gives), or the short name ``ts``, ``cts``,
            ``ets`` (with ``ets_space``) or ``pts``.
        objective: ``nll``, ``cl`` (SCTL's class-wise loss scaling), ``ls`` (label smoothing 0.05) or ``fl``
            (focal loss, gamma 3), each fitted with the official code's schedule for it.
        norm: Normalization of the class-wise loss: ``ND``, ``MM`` or ``CM``.
        reduction: ``sum`` (the official code) or ``mean`` over classes in the class-wise loss.
        ets_space: ``prob`` (Zhang et al.'s ETS) or ``logit`` (the SCTL repository's variant), for ``ets`` by name
            and the comparison table.
        compare: Also fit and tabulate every calibrator x objective at test.
        save_logits: Write the raw calibration and test logits to ``logits.npz`` in the run folder, for
            ``configs/cls_logits.yaml`` (calibration without the network).
        iterations: LBFGS max_iter, and Adam iterations for PTS.
        n_bins: Bins of the calibration errors.
    """

    # what the tests' smoke runs set (benchmarks/config_introspection.py): 19 fits of 1,000 steps each take ~12 s on
    # 2 CPU cores even for a smoke run's few logits
    SMOKE_ARGUMENTS: dict[str, Any] = {"iterations": 50}

    def __init__(
        self,
        calibrator: CalibratorChoice = "ts",
        objective: ObjectiveName = "cl",
        norm: Normalization = "ND",
        reduction: Literal["sum", "mean"] = "sum",
        ets_space: Literal["prob", "logit"] = "prob",
        compare: bool = True,
        save_logits: bool = True,
        iterations: int = 1000,
        n_bins: int = 15,
    ) -> None:
        if not callable(calibrator) and calibrator not in CALIBRATORS:
            raise ValueError(
                f"PostHocCalibration calibrator must be one of {CALIBRATORS} or a Calibrator class_path, "
                f"got {calibrator!r}"
            )
        if objective not in OBJECTIVES:
            raise ValueError(f"PostHocCalibration objective must be one of {OBJECTIVES}, got {objective!r}")
        self.choice, self.objective_name, self.ets_space = calibrator, objective, ets_space
        self.fitting = {
            "ets_space": ets_space,
            "norm": norm,
            "reduction": reduction,
            "iterations": iterations,
        }
        self.compare, self.save_logits, self.n_bins = compare, save_logits, n_bins
        self.fitted: Calibrator | None = None
        self.calibration_data: Any = None  # the datamodule, once setup has checked it has a calibration split
        self._calibration: tuple[torch.Tensor, torch.Tensor] | None = None  # logits, labels of the last fit
        self._test_logits: list[torch.Tensor] = []
        self._test_labels: list[torch.Tensor] = []

    # --------------------------------------------------------------------------------------- contracts
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        missing = [
            name for name in ("logits", "set_calibrator", "num_classes") if not hasattr(pl_module, name)
        ]
        if missing:
            raise TypeError(f"PostHocCalibration needs {type(pl_module).__name__} to have {missing}")
        # a held-out split to fit the calibrator on, checked once here and kept
        self.calibration_data = data_as(trainer.datamodule, CalibrationSplit, "PostHocCalibration")

    def fit(
        self, choice: CalibratorChoice, objective: ObjectiveName, logits: torch.Tensor, labels: torch.Tensor
    ) -> Calibrator:
        """A calibrator (short name or class_path) fitted with ``objective`` and this callback's settings."""
        return calibrate(choice, objective, logits, labels, **self.fitting)

    # ---------------------------------------------------------------------------------------- fitting
    @torch.no_grad()
    def calibration_logits(
        self, trainer: L.Trainer, pl_module: L.LightningModule
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw logits and labels of the whole calibration split (every rank computes all of it: no sampler)."""
        was_training = pl_module.training
        pl_module.eval()
        logits, labels = [], []
        for batch in self.calibration_data.calibration_dataloader():
            batch = pl_module.transfer_batch_to_device(batch, pl_module.device, 0)
            logits.append(pl_module.logits(batch).float())
            labels.append(batch["label"])
        pl_module.train(was_training)
        if not logits:
            raise ValueError("PostHocCalibration: the calibration split is empty")
        logits_all = torch.cat(logits)
        if not torch.isfinite(logits_all).all():
            raise FloatingPointError(
                "PostHocCalibration: the network's logits on the calibration split are not finite (NaN or inf): "
                "training diverged; lower the learning rate or add warm-up"
            )
        return logits_all, torch.cat(labels).long()

    def _fit_and_install(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logits, labels = self._calibration = self.calibration_logits(trainer, pl_module)
        self.fitted = self.fit(self.choice, self.objective_name, logits, labels)
        pl_module.set_calibrator(self.fitted)
        log.info(
            "fitted %s with %s on %d calibration samples", self.fitted.name, self.objective_name, len(labels)
        )

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._calibration = None  # the network is about to change

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Fit the calibrator on the finished network and save it with it: ``calibrated.ckpt``, which ``last.ckpt``
        then points to, so ``test`` / ``predict --ckpt_path last`` read the fitted calibrator instead of fitting it
        again on every call (a resumed fit starts from the same network and training state)."""
        self._fit_and_install(trainer, pl_module)
        checkpoint_dir = Path(trainer.checkpoint_callback.dirpath) if trainer.checkpoint_callback else None
        if checkpoint_dir is not None:
            calibrated = checkpoint_dir / "calibrated.ckpt"
            trainer.save_checkpoint(calibrated)
            last = checkpoint_dir / "last.ckpt"
            if trainer.is_global_zero and (last.is_symlink() or last.exists()):
                last.unlink()
                last.symlink_to(calibrated.name)

    def _ensure_fitted(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.fitted is None:
            self._fit_and_install(trainer, pl_module)
        else:
            pl_module.set_calibrator(self.fitted.to(pl_module.device))

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._ensure_fitted(trainer, pl_module)
        self._test_logits, self._test_labels = [], []

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._ensure_fitted(trainer, pl_module)

    # ------------------------------------------------------------------------------------------- test
    def on_test_batch_end(
        self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not isinstance(outputs, dict) or "logits" not in outputs:
            raise TypeError(
                "PostHocCalibration needs test_step to return {'logits': raw logits, 'label': labels}"
            )
        self._test_logits.append(outputs["logits"].detach().float())
        self._test_labels.append(outputs["label"].detach().long())

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logits = (
            pl_module.all_gather(torch.cat(self._test_logits)).flatten(0, -2)
            if trainer.world_size > 1
            else torch.cat(self._test_logits)
        )
        labels = (
            pl_module.all_gather(torch.cat(self._test_labels)).flatten()
            if trainer.world_size > 1
            else torch.cat(self._test_labels)
        )
        with torch.no_grad():
            calibrated = self.fitted(logits)
        before = calibration_report(logits, labels, self.n_bins)
        after = calibration_report(calibrated, labels, self.n_bins)
        pl_module.log_dict({f"test/{k}/uncalibrated": v for k, v in before.items()})
        pl_module.log_dict({f"test/{k}/calibrated": v for k, v in after.items()})
        self._draw(trainer, logits, calibrated, labels)
        if not trainer.is_global_zero or not (self.compare or self.save_logits):
            return
        out_dir = run_dir(trainer)
        # the network is frozen: the pass made to fit the calibrator still holds, unless it was loaded instead
        cal_logits, cal_labels = self._calibration or self.calibration_logits(trainer, pl_module)
        if self.save_logits:
            save_logits_file(out_dir / "logits.npz", (cal_logits, cal_labels), (logits, labels))
        if self.compare:
            components = pl_module.components() if hasattr(pl_module, "components") else ()
            markdown = compare_calibrators(
                (cal_logits, cal_labels), (logits, labels), out_dir, self.n_bins, components, **self.fitting
            )
            pl_module.print(
                "\n"
                + markdown
                + f"(written to {out_dir / 'calibration.csv'} and calibration.md; nll not in %)"
            )

    def _draw(
        self, trainer: L.Trainer, logits: torch.Tensor, calibrated: torch.Tensor, labels: torch.Tensor
    ) -> None:
        if not trainer.is_global_zero:
            return
        for tag, values in (("uncalibrated", logits), ("calibrated", calibrated)):
            confidence, prediction = values.softmax(dim=1).max(dim=1)
            picture = reliability_diagram(confidence, prediction == labels, self.n_bins)
            log_image(trainer, f"pictures/reliability_{tag}", picture)

    # ------------------------------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict[str, Any]:
        if self.fitted is None:
            return {}
        return {
            "calibrator": self.fitted.name,
            "init_args": self.fitted.init_args(),
            "objective": self.objective_name,
            "num_classes": self.fitted.num_classes,
            "state": self.fitted.state_dict(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Use the checkpoint's fitted calibrator when it is the one this run asks for (same class, init_args and
        objective); otherwise say so and refit. Checkpoints from before calibrators had init_args name ETS's
        space as ``ets_space``."""
        if not state_dict:
            return
        name = state_dict["calibrator"]
        saved_args = state_dict.get("init_args")
        if saved_args is None:
            saved_args = {"space": state_dict.get("ets_space", "prob")} if name == "ets" else {}
        requested = make_calibrator(self.choice, state_dict["num_classes"], self.ets_space)
        saved = (name, saved_args, state_dict["objective"])
        asked = (requested.name, requested.init_args(), self.objective_name)
        if saved != asked:
            log.warning("checkpoint holds the calibrator %s; this run asks for %s: refitting", saved, asked)
            return
        requested.load_state_dict(state_dict["state"])
        self.fitted = requested
