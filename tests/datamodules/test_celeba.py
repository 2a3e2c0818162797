"""CelebA-64 datamodule and its LFW-face stand-in: the published layout, labels from attributes, the crop, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datamodules.base import DatasetNotFoundError
from datamodules.celeba import CelebADataModule, read_attributes, read_partition
from datamodules.image_io import read_rgb
from datamodules.standins.celeba import HAT_COLORS, write_celeba_standin


@pytest.fixture(scope="module")
def celeba_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("celeba")
    write_celeba_standin(root / "celeba_standin_tiny", size="tiny", seed=0)
    return root


def test_standin_is_in_celeba_layout_with_people_disjoint_between_splits(celeba_root: Path) -> None:
    folder = celeba_root / "celeba_standin_tiny" / "celeba"
    partition = read_partition(folder / "list_eval_partition.txt")
    names, values = read_attributes(folder / "list_attr_celeba.txt")
    assert names == ["Pale_Skin", "Wearing_Hat", "Eyeglasses", "Blurry"]
    assert set(partition) == set(values) and len(partition) == 200
    assert read_rgb(folder / "img_align_celeba" / "000001.jpg").shape == (218, 178, 3)
    identity = dict(line.split() for line in (folder / "identity_CelebA.txt").read_text().splitlines())
    people = [{identity[i] for i, s in partition.items() if s == split} for split in range(3)]
    assert [len(p) for p in people] == [70, 10, 20]
    assert not (people[0] & people[1] or people[0] & people[2] or people[1] & people[2])


def test_attributes_are_true_of_the_pictures(celeba_root: Path) -> None:
    """Pale skin is lighter at the face center; a hat puts one of the hat colors above the face."""
    folder = celeba_root / "celeba_standin_tiny" / "celeba"
    names, values = read_attributes(folder / "list_attr_celeba.txt")
    pale, hat = names.index("Pale_Skin"), names.index("Wearing_Hat")
    cheek, crown = {True: [], False: []}, {True: [], False: []}
    hats = np.array(HAT_COLORS, dtype=np.float32)
    for image, row in values.items():
        pixels = read_rgb(folder / "img_align_celeba" / image).astype(np.float32)
        cheek[row[pale]].append(pixels[120:140, 70:108].mean())
        top = pixels[45:50, 70:108].reshape(-1, 3).mean(0)
        crown[row[hat]].append(np.abs(hats - top).sum(1).min())  # distance to the nearest hat color
    assert np.mean(cheek[True]) > np.mean(cheek[False]) + 20
    assert max(crown[True]) < 40 < min(crown[False])


def test_labels_are_bits_of_the_chosen_attributes_and_images_are_cropped(celeba_root: Path) -> None:
    dm = CelebADataModule(
        root=str(celeba_root),
        synthetic=True,
        standin_size="tiny",
        batch_size=8,
        num_workers=0,
        label_attributes=["Wearing_Hat", "Blurry"],
        image_size=48,
    )
    dm.prepare_data()
    dm.setup("fit")
    assert dm.num_classes == 4
    assert dm.class_names == [
        "-Wearing_Hat -Blurry",
        "+Wearing_Hat -Blurry",
        "-Wearing_Hat +Blurry",
        "+Wearing_Hat +Blurry",
    ]
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [140, 20, 40]
    folder = celeba_root / "celeba_standin_tiny" / "celeba"
    names, values = read_attributes(folder / "list_attr_celeba.txt")
    batch = next(iter(dm.test_dataloader()))
    assert batch["image"].shape == (8, 3, 48, 48) and 0 <= batch["image"].min() and batch["image"].max() <= 1
    for path, label, group in zip(batch["path"], batch["label"].tolist(), batch["group"], strict=True):
        row = values[Path(path).name]
        assert label == row[names.index("Wearing_Hat")] + 2 * row[names.index("Blurry")]
        assert group == dm.class_names[label]


def test_missing_files_unknown_attributes_and_bad_rows_are_clear_errors(
    celeba_root: Path, tmp_path: Path
) -> None:
    dm = CelebADataModule(root=str(tmp_path), num_workers=0)
    with pytest.raises(
        DatasetNotFoundError, match="img_align_celeba.*synthetic true.*missing: img_align_celeba"
    ):
        dm.prepare_data()
    dm = CelebADataModule(
        root=str(celeba_root), synthetic=True, standin_size="tiny", label_attributes=["Male"]
    )
    with pytest.raises(ValueError, match=r"label_attributes: \['Male'\] not in .*Pale_Skin"):
        dm.setup("fit")
    bad = tmp_path / "list_attr_celeba.txt"
    bad.write_text("2\nSmiling Male\n000001.jpg 1 -1\n000002.jpg 1 0\n")
    with pytest.raises(
        DatasetNotFoundError, match=r"list_attr_celeba.txt:4: expected an image name and 2 values"
    ):
        read_attributes(bad)
