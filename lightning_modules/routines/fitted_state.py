"""The lifecycle of a model part that is computed from the training images rather than learnt by gradient steps:
PatchCore's memory bank, CFlow's likelihood reference, EfficientAD's map quantiles.

Such a part must be fitted before anything reads it: before each validation that follows new training steps,
after the last training step (so the checkpoint written at the end of fit carries it, whether the fit ends at an
epoch's end, mid-epoch at ``max_steps``, or between validations), and, where it is cheap
(``refit_every_epoch``), at every epoch's end. Lightning's sanity check validates before any training image was
seen: its steps are skipped until the part has been fitted once. ``fitted`` is a buffer, so a resumed or loaded
model knows it.
"""

from __future__ import annotations

from typing import Any

import torch


class FittedStateMixin:
    """Mixin for a LightningModule (put it first among the bases); the module implements
    :meth:`fit_to_training_data`, and a module that overrides one of these hooks calls ``super()``'s."""

    refit_every_epoch: bool = True
    # the training loader keeps its last partial batch (datamodules.batch.USES_EVERY_TRAINING_IMAGE): a bank or
    # statistics fitted from the training images holds every one of them, not a batch multiple
    uses_every_training_image: bool = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register_buffer("fitted", torch.tensor(False))
        self._stale = False  # training steps ran since the last fit

    def fit_to_training_data(self) -> None:
        """Compute the fitted part from what the training steps collected (or from the training images)."""
        raise NotImplementedError

    def refit(self) -> None:
        self.fit_to_training_data()
        self.fitted.fill_(True)
        self._stale = False

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._stale = True
        trainer = self.trainer
        last_step = 0 < trainer.max_steps <= self.global_step
        last_epoch = trainer.max_epochs is not None and 0 < trainer.max_epochs <= self.current_epoch + 1
        if last_step or (last_epoch and batch_idx + 1 >= trainer.num_training_batches):
            self.refit()

    def on_validation_start(self) -> None:
        if self._stale:
            self.refit()

    def on_train_epoch_end(self) -> None:
        if self._stale and self.refit_every_epoch:
            self.refit()

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        if self.trainer.sanity_checking and not bool(self.fitted):
            return None  # before the first training image: nothing to score with yet
        return super().validation_step(batch, batch_idx)
