"""Learning-rate callbacks: a monitor that tolerates runs without a logger, and Wang et al.'s stop rule."""

from __future__ import annotations

import logging

import lightning as L
from lightning.pytorch.callbacks import Callback, LearningRateMonitor

log = logging.getLogger(__name__)


class LearningRateMonitorIfLogged(LearningRateMonitor):
    """Lightning's ``LearningRateMonitor``, inactive (instead of failing) when the run has no logger.

    ``fast_dev_run`` switches loggers off; the stock monitor then raises, which would make every default-
    configured debug run crash.
    """

    def on_train_start(self, trainer: L.Trainer, *args, **kwargs) -> None:
        if trainer.loggers:
            super().on_train_start(trainer, *args, **kwargs)

    def on_train_batch_start(self, trainer: L.Trainer, *args, **kwargs) -> None:
        if trainer.loggers:
            super().on_train_batch_start(trainer, *args, **kwargs)

    def on_train_epoch_start(self, trainer: L.Trainer, *args, **kwargs) -> None:
        if trainer.loggers:
            super().on_train_epoch_start(trainer, *args, **kwargs)


class StopBelowLearningRate(Callback):
    """Stop training once every optimizer's learning rate has fallen below ``min_lr``.

    With ``ReduceLROnPlateau(factor=0.1, patience=5)`` on ``val/acc`` this is CNNDetection's schedule: each
    plateau divides the learning rate by 10 and training ends when it drops under 1e-6.
    """

    def __init__(self, min_lr: float = 1e-6) -> None:
        self.min_lr = min_lr

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rates = [group["lr"] for optimizer in trainer.optimizers for group in optimizer.param_groups]
        if rates and max(rates) < self.min_lr:
            log.info("learning rate %.2e < min_lr %.2e: stopping", max(rates), self.min_lr)
            trainer.should_stop = True
