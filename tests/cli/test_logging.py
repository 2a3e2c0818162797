"""What a run writes to TensorBoard, read back from the event files: scalars, and pictures checked by pixel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision.utils import make_grid

from datamodules.forensynths import ForenSynthsDataModule
from lightning_modules.bihpf.networks import BiHPF
from tests.conftest import CONFIGS
from tests.helpers import decode, read_events


def test_scalars_and_filtered_pictures_reach_tensorboard(fitted_runs, standin_root: Path) -> None:
    events = read_events(fitted_runs(CONFIGS / "bihpf.yaml"))
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "val/ap", "lr-Adam"} <= scalars
    assert {"val/acc/cat", "val/ap/mean"} <= scalars  # per-category groups and their mean
    assert not any("seen" in tag for tag in scalars)  # seen/unseen only splits test generators
    assert len(events.Scalars("train/loss")) == 2  # log_every_n_steps: 1, two steps

    images = set(events.Tags()["images"])
    assert {
        "pictures/input",
        "pictures/filtered",
        "pictures/input_spectrum",
        "pictures/filtered_spectrum",
    } <= images

    # recompute the first validation batch and its filtered version, and compare pixel by pixel
    dm = ForenSynthsDataModule(
        root=str(standin_root),
        synthetic=True,
        standin_size="tiny",
        batch_size=4,
        num_workers=0,
        image_size=32,
    )
    dm.setup("validate")
    batch = next(iter(dm.val_dataloader()))
    expected_input = make_grid(batch["image"], nrow=8, padding=2)
    expected_filtered = make_grid(BiHPF()(batch["image"]).clamp(0, 1), nrow=8, padding=2)
    for tag, expected in (("pictures/input", expected_input), ("pictures/filtered", expected_filtered)):
        logged = decode(events.Images(tag)[0]).astype(np.float32) / 255.0
        want = expected.permute(1, 2, 0).numpy()
        assert logged.shape == want.shape
        assert np.abs(logged - want).max() <= 1.5 / 255.0, tag
    # the filter amplifies the border more than the center: it shows in the pictures
    crop = torch.from_numpy(decode(events.Images("pictures/filtered")[0]).astype(np.float32))
    original = torch.from_numpy(decode(events.Images("pictures/input")[0]).astype(np.float32))
    assert not torch.equal(crop, original)
