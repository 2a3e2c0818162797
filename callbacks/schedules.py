"""Per-step or per-epoch schedules that drive a named float of any module (perturbation strength, loss weights).

The value is a pure function of the trainer's progress (global step or epoch), so a resumed run continues the
schedule exactly where it stopped, with no state of its own to checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

Kind = Literal["constant", "linear", "cosine", "step"]


def schedule_value(
    progress: int,
    kind: Kind,
    start: float,
    end: float,
    duration: int,
    delay: int = 0,
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
) -> float:
    """The schedule's value after ``progress`` steps (or epochs).

    ``linear`` and ``cosine`` go from ``start`` to ``end`` over ``duration`` units after ``delay`` units, then
    stay at ``end``; ``step`` starts at ``start`` and multiplies by ``gamma`` at each milestone (counted from 0,
    ``end`` unused); ``constant`` is ``start``.
    """
    if kind == "constant":
        return start
    if kind == "step":
        return start * gamma ** sum(progress >= m for m in milestones)
    if kind not in ("linear", "cosine"):
        raise ValueError(f"schedule kind must be constant, linear, cosine or step, got {kind!r}")
    fraction = min(max((progress - delay) / max(duration, 1), 0.0), 1.0)
    if kind == "cosine":
        fraction = 0.5 * (1.0 - math.cos(math.pi * fraction))
    return start + (end - start) * fraction


class ScheduleCallback(Callback):
    """Set ``pl_module.<attribute>`` from a schedule before every training step (or epoch) and log it.

    Works with any module that has the attribute as a float or a 0-d tensor (a buffer keeps the last value in
    the checkpoint, so ``test`` uses the value training ended with). Logged as ``schedule/<attribute>``.

    Args:
        attribute: Name of the module attribute to drive, e.g. ``perturbation_scale``.
        kind: ``constant``, ``linear``, ``cosine`` or ``step``.
        start: Value at the beginning.
        end: Value after ``delay + duration`` (linear, cosine).
        duration: Length of the ramp in ``interval`` units, or, as a float in (0, 1], a fraction of the
            whole training (``trainer.max_epochs`` or the estimated number of iterations).
        interval: ``step`` (training iterations, i.e. batches; the global step of a one-optimizer module) or
            ``epoch``.
        delay: Units to hold ``start`` before the ramp begins.
        milestones: Units at which a ``step`` schedule multiplies by ``gamma``.
        gamma: Factor of a ``step`` schedule.
    """

    def __init__(
        self,
        attribute: str,
        kind: Kind = "linear",
        start: float = 0.0,
        end: float = 1.0,
        duration: int | float = 10,
        interval: Literal["step", "epoch"] = "epoch",
        delay: int = 0,
        milestones: list[int] | None = None,
        gamma: float = 0.1,
    ) -> None:
        if interval not in ("step", "epoch"):
            raise ValueError(f"ScheduleCallback interval must be step or epoch, got {interval!r}")
        schedule_value(0, kind, start, end, 1)  # validates kind now, not at the first step
        if duration <= 0 or (isinstance(duration, float) and duration > 1):
            raise ValueError(
                f"ScheduleCallback duration must be a positive int or a fraction in (0, 1], got {duration}"
            )
        self.attribute = attribute
        self.kind = kind
        self.start, self.end, self.duration = start, end, duration
        self._units = duration if isinstance(duration, int) else None
        self.interval = interval
        self.delay = delay
        self.milestones = list(milestones or [])
        self.gamma = gamma

    def value_at(self, progress: int) -> float:
        units = self._units if self._units is not None else self.duration
        return schedule_value(
            progress, self.kind, self.start, self.end, units, self.delay, self.milestones, self.gamma
        )

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        current = getattr(pl_module, self.attribute, None)
        if not isinstance(current, float | int) and not (
            isinstance(current, torch.Tensor) and current.ndim == 0
        ):
            raise AttributeError(
                f"ScheduleCallback drives {type(pl_module).__name__}.{self.attribute}, which must exist as a float "
                f"or 0-d tensor (found {type(current).__name__})"
            )
        if isinstance(self.duration, float) and stage == "fit":
            total = trainer.max_epochs if self.interval == "epoch" else trainer.estimated_stepping_batches
            if total is None or total < 0 or math.isinf(total):
                raise ValueError(
                    "ScheduleCallback: a fractional duration needs trainer.max_epochs (or max_steps)"
                )
            self._units = max(1, math.ceil(self.duration * total))

    def _apply(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # iterations, not trainer.global_step: with several optimizers (GANs) global_step counts each one's steps
        progress = (
            trainer.fit_loop.epoch_loop.total_batch_idx if self.interval == "step" else trainer.current_epoch
        )
        value = self.value_at(progress)
        current = getattr(pl_module, self.attribute)
        if isinstance(current, torch.Tensor):
            current.fill_(value)
        else:
            setattr(pl_module, self.attribute, float(value))
        per_step = self.interval == "step"
        pl_module.log(f"schedule/{self.attribute}", float(value), on_step=per_step, on_epoch=not per_step)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args, **kwargs) -> None:
        if self.interval == "step":
            self._apply(trainer, pl_module)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.interval == "epoch":
            self._apply(trainer, pl_module)
