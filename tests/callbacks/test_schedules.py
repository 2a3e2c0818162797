"""ScheduleCallback: values at chosen steps, driving any module's float or buffer, logging, resuming."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch

from callbacks.schedules import ScheduleCallback, schedule_value
from tests.helpers import quiet_trainer


@pytest.mark.parametrize(
    "kind, progress, expected",
    [
        ("linear", 0, 0.0),
        ("linear", 5, 0.5),
        ("linear", 10, 1.0),
        ("linear", 99, 1.0),
        ("cosine", 0, 0.0),
        ("cosine", 5, 0.5),
        ("cosine", 10, 1.0),
        ("cosine", 2, 0.5 * (1 - math.cos(math.pi * 0.2))),
        ("constant", 7, 0.0),
    ],
)
def test_values_at_chosen_steps(kind: str, progress: int, expected: float) -> None:
    assert schedule_value(progress, kind, start=0.0, end=1.0, duration=10) == pytest.approx(expected)


def test_delay_and_step_schedules() -> None:
    assert schedule_value(3, "linear", 2.0, 4.0, duration=4, delay=4) == 2.0
    assert schedule_value(6, "linear", 2.0, 4.0, duration=4, delay=4) == pytest.approx(3.0)
    values = [schedule_value(p, "step", 1.0, 0.0, 0, milestones=[2, 4], gamma=0.5) for p in range(6)]
    assert values == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    with pytest.raises(ValueError, match="schedule kind"):
        ScheduleCallback("x", kind="exponential")


class Toy(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.weight_float = 5.0
        self.register_buffer("weight_buffer", torch.tensor(5.0))
        self.seen: list[tuple[float, float]] = []

    def training_step(self, batch, batch_idx):
        self.seen.append((self.weight_float, float(self.weight_buffer)))
        return self.layer(batch).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.ones(4, 1), batch_size=1)


def test_callback_drives_a_float_and_a_buffer_per_step(tmp_path) -> None:
    module = Toy()
    callbacks = [
        ScheduleCallback("weight_float", start=0.0, end=1.0, duration=4, interval="step"),
        ScheduleCallback("weight_buffer", kind="step", start=1.0, milestones=[2], gamma=0.1, interval="step"),
    ]
    trainer = quiet_trainer(
        max_epochs=1, callbacks=callbacks, default_root_dir=tmp_path, log_every_n_steps=1, logger=True
    )
    trainer.fit(module)
    assert module.seen == [(0.0, 1.0), (0.25, 1.0), (0.5, pytest.approx(0.1)), (0.75, pytest.approx(0.1))]
    assert trainer.callback_metrics["schedule/weight_float"] == pytest.approx(0.75)


def test_epoch_interval_follows_the_epoch(tmp_path) -> None:
    module = Toy()
    trainer = quiet_trainer(
        max_epochs=3,
        default_root_dir=tmp_path,
        callbacks=[ScheduleCallback("weight_float", start=0.0, end=1.0, duration=2)],
    )
    trainer.fit(module)
    assert [w for w, _ in module.seen] == [0.0] * 4 + [0.5] * 4 + [1.0] * 4


def test_a_module_without_the_attribute_is_a_clear_error(tmp_path) -> None:
    trainer = quiet_trainer(
        max_epochs=1, default_root_dir=tmp_path, callbacks=[ScheduleCallback("perturbation_scale")]
    )
    with pytest.raises(AttributeError, match=r"Toy.perturbation_scale, which must exist as a float"):
        trainer.fit(Toy())


def test_fractional_duration_is_a_share_of_max_epochs(tmp_path) -> None:
    module = Toy()
    trainer = quiet_trainer(
        max_epochs=4,
        default_root_dir=tmp_path,
        callbacks=[ScheduleCallback("weight_float", start=0.0, end=1.0, duration=0.5)],
    )
    trainer.fit(module)
    assert [w for w, _ in module.seen[::4]] == [0.0, 0.5, 1.0, 1.0]
    with pytest.raises(ValueError, match="fraction in"):
        ScheduleCallback("x", duration=1.5)
