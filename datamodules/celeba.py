"""CelebA in its published on-disk layout (torchvision's ``<root>/celeba/``), cropped to faces and resized: CelebA-64.

Files read: ``img_align_celeba/*.jpg`` (the aligned 178x218 images), ``list_eval_partition.txt`` (0 train,
1 valid, 2 test) and ``list_attr_celeba.txt`` (40 binary attributes, -1 / 1). CelebA has no classes: the label is
built from ``label_attributes`` (n attributes -> 2^n classes, bit i = attribute i), which is what topic purity
and NMI are measured against. Images are center-cropped to ``crop_size`` (128, the TVQ-VAE / DCGAN CelebA-64
crop) and resized to ``image_size`` (64).

No download: CelebA is served from Google Drive with quotas, so the files are put there by hand (the message says
where from). ``synthetic: true`` builds the LFW-face stand-in in the same layout (``standins/celeba.py``).
Batches: ``image`` (B, 3, S, S) in [0, 1], ``label``, ``group`` (class name), ``path``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import albumentations as A
import cv2
from albumentations.pytorch import ToTensorV2

from datamodules.base import BaseDataModule, DatasetNotFoundError, ImageRecord, ImageRecordDataset
from datamodules.standins.celeba import STANDIN_VERSION, write_celeba_standin

log = logging.getLogger(__name__)
SPLITS = {"train": 0, "val": 1, "test": 2}
FILES = ("img_align_celeba", "list_eval_partition.txt", "list_attr_celeba.txt")


def read_attributes(path: Path) -> tuple[list[str], dict[str, list[bool]]]:
    """``list_attr_celeba.txt`` -> (attribute names, image name -> values); a malformed row names its line."""
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        raise DatasetNotFoundError(f"{path}: expected a count line and a line of attribute names")
    names = lines[1].split()
    values = {}
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != len(names) + 1 or any(v not in ("1", "-1") for v in fields[1:]):
            raise DatasetNotFoundError(
                f"{path}:{number}: expected an image name and {len(names)} values of 1 or -1, got {line.strip()!r}"
            )
        values[fields[0]] = [v == "1" for v in fields[1:]]
    return names, values


def read_partition(path: Path) -> dict[str, int]:
    """``list_eval_partition.txt`` -> image name -> 0 (train), 1 (valid) or 2 (test)."""
    partition = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise DatasetNotFoundError(f"{path}:{number}: expected '<image> <0|1|2>', got {line.strip()!r}")
        partition[fields[0]] = int(fields[1])
    return partition


class CelebADataModule(BaseDataModule):
    """CelebA-64: aligned CelebA faces, center crop, resize; labels from chosen binary attributes.

    Args:
        label_attributes: Attributes whose combination is the label (``[Male]``: 2 classes; ``[Male, Smiling]``: 4).
            Default ``[Pale_Skin, Wearing_Hat]``: real CelebA attributes that the stand-in also renders.
        crop_size: Side of the center crop taken from the 178x218 aligned image before resizing.
        flip: Random horizontal flip in training.
        **kwargs: The shared arguments of :class:`~datamodules.base.BaseDataModule` (root, batch_size,
            num_workers, image_size, synthetic, standin_size, bad_files, pin_memory, seed).
    """

    layout = "celeba"
    standin_version = STANDIN_VERSION

    def __init__(
        self,
        label_attributes: list[str] | None = None,
        crop_size: int = 128,
        flip: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("root", "data")
        kwargs.setdefault("image_size", 64)
        super().__init__(**kwargs)
        if crop_size < 1:
            raise ValueError(f"data.init_args.crop_size must be >= 1, got {crop_size}")
        self.label_attributes = list(label_attributes or ["Pale_Skin", "Wearing_Hat"])
        self.crop_size = crop_size
        self.flip = flip

    @property
    def folder(self) -> Path:
        return self.data_dir / "celeba"

    def write_standin(self, out_dir: Path) -> None:
        write_celeba_standin(out_dir, size=self.standin_size, seed=self.seed)

    def missing_data_message(self) -> str:
        return (
            f"CelebA not found: {self.folder} must hold {', '.join(FILES)} (the 'Align&Cropped Images' zip and the "
            "Anno/Eval text files of https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html, or what "
            "torchvision.datasets.CelebA(root, download=True) fetches where Google Drive is reachable); or run on "
            "the LFW-face stand-in with --data.init_args.synthetic true"
        )

    def check_data_present(self) -> None:
        missing = [name for name in FILES if not (self.folder / name).exists()]
        if missing:
            raise DatasetNotFoundError(f"{self.missing_data_message()} (missing: {', '.join(missing)})")

    # ----------------------------------------------------------------------------------------- lightning
    def setup(self, stage: str) -> None:
        if self.datasets or self.predicting_a_folder(stage):
            return
        self.check_data_present()
        names, values = read_attributes(self.folder / "list_attr_celeba.txt")
        unknown = [a for a in self.label_attributes if a not in names]
        if unknown:
            raise ValueError(
                f"data.init_args.label_attributes: {unknown} not in {self.folder / 'list_attr_celeba.txt'}, "
                f"which has {names}"
            )
        columns = [names.index(a) for a in self.label_attributes]
        partition = read_partition(self.folder / "list_eval_partition.txt")
        records: dict[int, list[ImageRecord]] = {0: [], 1: [], 2: []}
        class_names = self.class_names
        for image, split in partition.items():
            if image not in values:
                raise DatasetNotFoundError(f"{self.folder / 'list_attr_celeba.txt'} has no row for {image}")
            label = sum(1 << bit for bit, column in enumerate(columns) if values[image][column])
            records[split].append(
                ImageRecord(self.folder / "img_align_celeba" / image, label, class_names[label])
            )
        empty = [name for name, split in SPLITS.items() if not records[split]]
        if empty:
            raise DatasetNotFoundError(
                f"{self.folder / 'list_eval_partition.txt'} lists no image for {empty}"
            )
        self.datasets = {
            name: ImageRecordDataset(
                records[split],
                self.train_transform() if name == "train" else self.eval_transform(),
                self.bad_files,
            )
            for name, split in SPLITS.items()
        }
        log.info(
            "CelebA: %s images (train, val, test), labels from %s",
            [len(records[s]) for s in SPLITS.values()],
            self.label_attributes,
        )

    @property
    def class_names(self) -> list[str]:
        """One name per label: each attribute with + (present) or - (absent), bit i = attribute i."""
        return [
            " ".join(("+" if label >> bit & 1 else "-") + a for bit, a in enumerate(self.label_attributes))
            for label in range(1 << len(self.label_attributes))
        ]

    @property
    def num_classes(self) -> int:
        return 1 << len(self.label_attributes)

    def groups_for(self, split: str) -> list[str]:
        return self.class_names

    # ---------------------------------------------------------------------------------------- transforms
    def _crop_resize(self) -> list[A.BasicTransform]:
        crop = self.crop_size
        return [
            A.PadIfNeeded(crop, crop, border_mode=cv2.BORDER_CONSTANT, fill=0),
            A.CenterCrop(crop, crop),
            A.Resize(self.image_size, self.image_size, interpolation=cv2.INTER_AREA),
        ]

    def train_transform(self) -> A.Compose:
        flip = [A.HorizontalFlip(p=0.5)] if self.flip else []
        return A.Compose([*self._crop_resize(), *flip, A.ToFloat(max_value=255.0), ToTensorV2()])

    def eval_transform(self) -> A.Compose:
        return A.Compose([*self._crop_resize(), A.ToFloat(max_value=255.0), ToTensorV2()])
