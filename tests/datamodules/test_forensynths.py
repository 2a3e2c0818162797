"""The ForenSynths DataModule on the stand-in and on hand-made folders: layout, subsets, bad files, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.base import DatasetNotFoundError
from datamodules.forensynths import ForenSynthsDataModule
from datamodules.image_io import BadImageError, read_rgb
from datamodules.standins.forensynths import (
    BLURRED_REAL,
    CONTROL_GROUPS,
    FAMILIES,
    SEEN_FAMILY,
    TRAIN_CATEGORIES,
    UNSEEN_CATEGORIES,
)


def make_dm(root: Path, **kwargs) -> ForenSynthsDataModule:
    defaults = dict(
        root=str(root), synthetic=True, standin_size="tiny", batch_size=4, num_workers=0, image_size=32
    )
    defaults.update(kwargs)
    return ForenSynthsDataModule(**defaults)


def all_batches(loader) -> list[dict]:
    return list(loader)


def test_standin_layout_is_cnndetection_layout(standin_root: Path) -> None:
    data = standin_root / "forensynths_standin_tiny"
    info = json.loads((data / "STANDIN.json").read_text())
    assert info["seen_generators"] == [SEEN_FAMILY]
    for split in ("train", "val"):
        assert sorted(p.name for p in (data / split).iterdir()) == sorted(TRAIN_CATEGORIES)
        for category in TRAIN_CATEGORIES:
            assert {p.name for p in (data / split / category).iterdir()} == {"0_real", "1_fake"}
    groups = [f.name for f in FAMILIES] + list(CONTROL_GROUPS)
    assert sorted(p.name for p in (data / "test").iterdir()) == sorted(groups)
    for group in groups:
        assert sorted(p.name for p in (data / "test" / group).iterdir()) == sorted(
            TRAIN_CATEGORIES + UNSEEN_CATEGORIES
        )
    assert info["control_groups"] == [BLURRED_REAL]


def test_blurred_reals_are_smoother_than_the_reals(standin_root: Path) -> None:
    """The control group's reals are blurred copies-in-kind of the reals: far less high-frequency energy."""
    import numpy as np
    from PIL import Image

    def laplacian_energy(folder: Path) -> float:
        images = np.stack([np.asarray(Image.open(p), dtype=np.float32) for p in sorted(folder.glob("*.png"))])
        lap = 4 * images[:, 1:-1, 1:-1] - images[:, :-2, 1:-1] - images[:, 2:, 1:-1]
        lap -= images[:, 1:-1, :-2] + images[:, 1:-1, 2:]
        return float((lap**2).mean())

    data = standin_root / "forensynths_standin_tiny" / "test"
    for category in TRAIN_CATEGORIES:
        sharp = laplacian_energy(data / SEEN_FAMILY / category / "0_real")
        blurred = laplacian_energy(data / BLURRED_REAL / category / "0_real")
        assert blurred < 0.5 * sharp, (category, blurred, sharp)


def test_reads_the_standin_as_dict_batches(standin_root: Path) -> None:
    dm = make_dm(standin_root)
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"image", "label", "group", "path", "skipped"}
    assert batch["image"].shape == (4, 3, 32, 32) and batch["image"].dtype == torch.float32
    assert 0.0 <= batch["image"].min() and batch["image"].max() <= 1.0
    assert set(batch["label"].tolist()) <= {0, 1}
    assert all(g in TRAIN_CATEGORIES for g in batch["group"])
    # labels follow the folder names
    for path, label in zip(batch["path"], batch["label"].tolist(), strict=True):
        assert ("1_fake" in path) == (label == 1)
    assert dm.groups_for("val") == sorted(TRAIN_CATEGORIES)


def test_test_split_groups_by_generator_and_category(standin_root: Path) -> None:
    dm = make_dm(standin_root)
    dm.setup("test")
    assert dm.groups_for("test") == sorted([f.name for f in FAMILIES] + list(CONTROL_GROUPS))
    assert dm.effective_seen_generators() == [SEEN_FAMILY]
    assert dm.effective_control_groups() == [BLURRED_REAL]
    assert make_dm(standin_root, control_groups=[]).effective_control_groups() == []
    both = make_dm(standin_root, group_by="generator/category", test_generators=["nearest_conv"])
    both.setup("test")
    assert both.groups_for("test") == sorted(
        f"nearest_conv/{c}" for c in TRAIN_CATEGORIES + UNSEEN_CATEGORIES
    )


def test_classes_pick_the_training_categories(standin_root: Path) -> None:
    dm = make_dm(standin_root, classes=["cat", "rocket"])
    dm.setup("fit")
    groups = {r.group for r in dm.datasets["train"].records}
    assert groups == {"cat", "rocket"}
    # a class the stand-in does not have falls back to all of its categories (the paper's car/chair/horse)
    fallback = make_dm(standin_root, classes=["car", "cat", "chair", "horse"])
    fallback.setup("fit")
    assert {r.group for r in fallback.datasets["train"].records} == set(TRAIN_CATEGORIES)


def copy_layout(standin_root: Path, tmp_path: Path) -> Path:
    real = tmp_path / "cnndetection"
    shutil.copytree(standin_root / "forensynths_standin_tiny", real)
    return real


def test_real_layout_rejects_unknown_classes(standin_root: Path, tmp_path: Path) -> None:
    root = copy_layout(standin_root, tmp_path)
    dm = ForenSynthsDataModule(root=str(root), classes=["car"], num_workers=0, image_size=32)
    with pytest.raises(DatasetNotFoundError, match=r"classes: \['car'\] not found"):
        dm.setup("fit")


def test_missing_root_says_where_to_get_the_data(tmp_path: Path) -> None:
    dm = ForenSynthsDataModule(root=str(tmp_path / "nowhere"), num_workers=0)
    with pytest.raises(DatasetNotFoundError) as error:
        dm.prepare_data()
    message = str(error.value)
    assert "\n" not in message
    assert "github.com/PeterWang512/CNNDetection" in message and "synthetic true" in message


def write_bad_files(folder: Path) -> None:
    (folder / "corrupt.png").write_bytes(b"this is not a png at all")
    good = Image.fromarray(np.full((40, 40, 3), 128, np.uint8))
    good.save(folder / "whole.png")
    data = (folder / "whole.png").read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    (folder / "whole.png").unlink()


def test_bad_files_are_skipped_and_counted(standin_root: Path, tmp_path: Path) -> None:
    root = copy_layout(standin_root, tmp_path)
    write_bad_files(root / "val" / "cat" / "0_real")
    dm = ForenSynthsDataModule(root=str(root), num_workers=0, image_size=32, load_size=None, batch_size=64)
    dm.setup("validate")
    batches = all_batches(dm.val_dataloader())
    assert sum(b["skipped"] for b in batches) == 2
    good = sum(len(b["path"]) for b in batches)
    assert good == len(dm.datasets["val"]) - 2
    assert not any("corrupt" in p or "truncated" in p for b in batches for p in b["path"])
    # the DataModule's transfer hook counts them per stage
    for batch in batches:
        dm.on_before_batch_transfer(batch, 0)
    assert sum(dm.skipped_files.values()) == 2 and all("skipped" not in b for b in batches)


def test_bad_files_error_names_the_file(standin_root: Path, tmp_path: Path) -> None:
    root = copy_layout(standin_root, tmp_path)
    write_bad_files(root / "val" / "cat" / "0_real")
    dm = ForenSynthsDataModule(root=str(root), num_workers=0, image_size=32, bad_files="error")
    dm.setup("validate")
    with pytest.raises(BadImageError, match=r"(corrupt|truncated)\.png: cannot decode"):
        all_batches(dm.val_dataloader())


@pytest.mark.parametrize(
    "mode, array",
    [
        ("L", np.arange(64, dtype=np.uint8).reshape(8, 8) * 4),
        ("RGBA", np.dstack([np.full((8, 8, 3), 200, np.uint8), np.full((8, 8), 7, np.uint8)])),
        ("I;16", (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)),
        ("P", None),
    ],
)
def test_any_mode_loads_as_three_channel_uint8(tmp_path: Path, mode: str, array) -> None:
    path = tmp_path / f"img_{mode.replace(';', '')}.png"
    if mode == "P":
        Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).convert("P").save(path)
    else:
        image = Image.fromarray(array)
        assert image.mode == mode
        image.save(path)
    rgb = read_rgb(path)
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    if mode == "I;16":
        # scaled by /257, not clipped: 63000 -> 245
        assert rgb[7, 7, 0] == round(63 * 1000 / 257) and rgb[0, 1, 0] == round(1000 / 257)
    if mode == "RGBA":
        assert (rgb == 200).all()
    if mode == "L":
        assert (rgb[..., 0] == rgb[..., 2]).all() and rgb[7, 7, 0] == 252


def test_image_smaller_than_the_crop_is_padded(tmp_path: Path, standin_root: Path) -> None:
    root = copy_layout(standin_root, tmp_path)
    small = root / "val" / "cat" / "0_real" / "small.png"
    Image.fromarray(np.full((10, 12, 3), 255, np.uint8)).save(small)
    dm = ForenSynthsDataModule(root=str(root), num_workers=0, image_size=32, load_size=None, batch_size=256)
    dm.setup("validate")
    batch = next(iter(dm.val_dataloader()))
    index = batch["path"].index(str(small))
    assert batch["image"][index].shape == (3, 32, 32)


def test_predict_reads_a_folder_of_images(standin_root: Path) -> None:
    dm = make_dm(
        standin_root, predict_dir=str(standin_root / "forensynths_standin_tiny" / "test" / "nearest_conv")
    )
    dm.setup("predict")
    batch = next(iter(dm.predict_dataloader()))
    assert (batch["label"] == -1).all() and len(batch["path"]) == 4
    absent = make_dm(standin_root, predict_dir=str(standin_root / "nothing_here"))
    absent.setup("predict")
    with pytest.raises(DatasetNotFoundError, match="nothing_here' is not a folder"):
        absent.predict_dataloader()
    (standin_root / "empty_folder").mkdir(exist_ok=True)
    empty = make_dm(standin_root, predict_dir=str(standin_root / "empty_folder"))
    empty.setup("predict")
    with pytest.raises(DatasetNotFoundError, match="holds no images"):
        empty.predict_dataloader()
    test_split = make_dm(standin_root)  # without predict_dir: the test split, as every layout does
    test_split.setup("predict")
    batch = next(iter(test_split.predict_dataloader()))
    assert set(batch["label"].tolist()) <= {0, 1} and len(test_split.datasets["test"]) > 4


def test_augmentation_follows_the_torch_seed(standin_root: Path) -> None:
    """Same torch seed (seed_everything, or a worker's seed) -> same augmentation; another seed -> another."""

    def first_images(seed: int) -> torch.Tensor:
        dm = make_dm(standin_root, blur_prob=0.5, jpeg_prob=0.5)
        dm.setup("fit")
        torch.manual_seed(seed)
        return torch.stack([dm.datasets["train"][0]["image"] for _ in range(6)])

    assert torch.equal(first_images(3), first_images(3))
    assert not torch.equal(first_images(3), first_images(4))


def test_a_missing_split_names_the_folder(standin_root: Path, tmp_path: Path) -> None:
    root = copy_layout(standin_root, tmp_path)
    shutil.rmtree(root / "val")
    dm = ForenSynthsDataModule(root=str(root), num_workers=0, image_size=32)
    with pytest.raises(DatasetNotFoundError, match=r"val does not exist\. Get CNNDetection"):
        dm.setup("fit")


def test_an_empty_class_folder_is_a_clear_error(standin_root: Path, tmp_path: Path) -> None:
    root = copy_layout(standin_root, tmp_path)
    shutil.rmtree(root / "train" / "cat" / "1_fake")
    dm = ForenSynthsDataModule(root=str(root), num_workers=0, image_size=32)
    with pytest.raises(DatasetNotFoundError, match=r"train/cat must hold both 0_real/ and 1_fake/"):
        dm.setup("fit")
