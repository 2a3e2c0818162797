"""CIFAR-10 / CIFAR-100 (balanced or long-tailed) and image folders, with a held-out calibration split.

* ``dataset: cifar10 | cifar100`` reads torchvision's on-disk format under ``root`` (downloaded when
  ``download: true`` and online); ``dataset: folder`` reads ``<root>/{train,test}/<class>/*`` for a user's own
  classes (class names sorted).
* ``imbalance_factor: rho`` keeps n_c = floor(n_max * rho^(-c / (C - 1))) training images of class c (seeded
  choice): CIFAR-LT. The test set stays balanced.
* ``calibration_fraction`` holds out a stratified share of the (long-tailed) training set, floor per class, so
  tail classes may get none (SCTL's setting). It is the validation split and what calibration callbacks fit on.

Batches: ``image`` (B, 3, S, S) in [0, 1], ``label``, ``group`` (class name), ``path``. Training augmentation is
the standard CIFAR one: pad 4, random crop, horizontal flip.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import albumentations as A
import cv2
import numpy as np
from albumentations.pytorch import ToTensorV2
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets import CIFAR10, CIFAR100

from datamodules.archives import UnsafeArchiveError, download_and_extract
from datamodules.base import (
    BaseDataModule,
    DatasetNotFoundError,
    ImageRecord,
    ImageRecordDataset,
    ReseededTransformMixin,
)
from datamodules.image_io import list_images
from datamodules.standins.cifar import STANDIN_VERSION, write_cifar_standin

log = logging.getLogger(__name__)
DatasetName = Literal["cifar10", "cifar100", "folder"]


def _without_checksums(reader: type) -> type:
    """torchvision's reader for the stand-in: its MD5s are the real archive's, so only existence is checked."""
    return type(
        f"Standin{reader.__name__}",
        (reader,),
        {
            "train_list": [[name, None] for name, _ in reader.train_list],
            "test_list": [[name, None] for name, _ in reader.test_list],
            "meta": {**reader.meta, "md5": None},
        },
    )


_StandinCIFAR10 = _without_checksums(CIFAR10)
_StandinCIFAR100 = _without_checksums(CIFAR100)


class ArrayImageDataset(ReseededTransformMixin, Dataset):
    """Images held in memory as (N, H, W, 3) uint8, as dict samples like :class:`ImageRecordDataset`'s."""

    def __init__(
        self, images: np.ndarray, labels: np.ndarray, names: list[str], transform: A.Compose, tag: str
    ) -> None:
        self.images, self.labels, self.names, self.transform, self.tag = images, labels, names, transform, tag
        self._seeded_from: int | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        self._reseed_transform()
        label = int(self.labels[index])
        return {
            "image": self.transform(image=self.images[index])["image"],
            "label": label,
            "group": self.names[label],
            "path": f"{self.tag}/{index}",
        }


def long_tailed_counts(max_count: int, num_classes: int, imbalance_factor: float) -> list[int]:
    """n_c = floor(n_max * rho^(-c / (C - 1))) for c = 0..C-1 (at least 1)."""
    return [max(1, int(max_count * imbalance_factor ** (-c / (num_classes - 1)))) for c in range(num_classes)]


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (kept, held out) with floor(fraction * n_c) held out per class, seeded."""
    rng = np.random.default_rng(seed)
    kept, held = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        cut = int(fraction * len(members))
        held.append(members[:cut])
        kept.append(members[cut:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held)) if held else np.array([], dtype=int)


class CIFARDataModule(BaseDataModule):
    """CIFAR-10/100, their long-tailed variants, or an image folder, with a stratified calibration split.

    Args:
        dataset: ``cifar10``, ``cifar100`` or ``folder``.
        imbalance_factor: rho of the long-tailed profile (null or 1: balanced).
        calibration_fraction: Share of each training class held out for validation and calibration.
        download: Download CIFAR when it is missing (needs the internet).
        train_fraction: Small-data setting: keep this share of each class's training images (seeded, at least one).
        samples_per_class: Small-data setting: keep this many training images per class (seeded); not with
            ``train_fraction``.
        crop_padding: Padding before the random crop (CIFAR standard: 4).
        flip: Random horizontal flip in training.
        **kwargs: The shared arguments of :class:`~datamodules.base.BaseDataModule` (root, batch_size,
            num_workers, image_size, synthetic, standin_size, bad_files, pin_memory, seed).
    """

    layout = "cifar"
    standin_version = STANDIN_VERSION

    def __init__(
        self,
        dataset: DatasetName = "cifar10",
        imbalance_factor: float | None = None,
        calibration_fraction: float = 0.1,
        download: bool = True,
        train_fraction: float | None = None,
        samples_per_class: int | None = None,
        crop_padding: int = 4,
        flip: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("root", "data/cifar")
        kwargs.setdefault("image_size", 32)
        kwargs.setdefault("batch_size", 128)
        super().__init__(**kwargs)
        if dataset not in ("cifar10", "cifar100", "folder"):
            raise ValueError(f"data.init_args.dataset must be cifar10, cifar100 or folder, got {dataset!r}")
        if imbalance_factor is not None and imbalance_factor < 1:
            raise ValueError(f"data.init_args.imbalance_factor must be >= 1, got {imbalance_factor}")
        if not 0 <= calibration_fraction < 1:
            raise ValueError(
                f"data.init_args.calibration_fraction must be in [0, 1), got {calibration_fraction}"
            )
        if dataset == "folder" and self.synthetic:
            raise ValueError(
                "the stand-in is written in CIFAR's layout: use dataset cifar10 or cifar100 with synthetic"
            )
        if train_fraction is not None and not 0 < train_fraction <= 1:
            raise ValueError(f"data.init_args.train_fraction must be in (0, 1], got {train_fraction}")
        if samples_per_class is not None and samples_per_class < 1:
            raise ValueError(f"data.init_args.samples_per_class must be >= 1, got {samples_per_class}")
        if train_fraction is not None and samples_per_class is not None:
            raise ValueError("data.init_args: set train_fraction or samples_per_class, not both")
        self.train_fraction = train_fraction
        self.samples_per_class = samples_per_class
        self.dataset = dataset
        self.imbalance_factor = imbalance_factor
        self.calibration_fraction = calibration_fraction
        self.download = download
        self.crop_padding = crop_padding
        self.flip = flip
        self.datasets: dict[str, Dataset] = {}
        self.class_names: list[str] = []

    # ------------------------------------------------------------------------------------------ on disk
    def write_standin(self, out_dir: Path) -> None:
        write_cifar_standin(out_dir, size=self.standin_size, seed=self.seed)

    def missing_data_message(self) -> str:
        if self.dataset == "folder":
            return f"image folder data.init_args.root={self.root!r} must hold train/<class>/ and test/<class>/ folders"
        return (
            f"{self.dataset} not found under data.init_args.root={self.root!r} and it could not be downloaded "
            f"(offline?). Put torchvision's {self.dataset} files there (https://www.cs.toronto.edu/~kriz/cifar.html), "
            "or run on the built-in stand-in with --data.init_args.synthetic true"
        )

    def check_data_present(self) -> None:
        if self.dataset == "folder":
            if not all((self.data_dir / s).is_dir() for s in ("train", "test")):
                raise DatasetNotFoundError(self.missing_data_message())
            return
        reader = CIFAR10 if self.dataset == "cifar10" else CIFAR100
        try:
            if self.download and not (self.data_dir / reader.base_folder).is_dir():
                # torchvision's own download would unpack the archive without filtering its member names
                download_and_extract(reader.url, self.data_dir, reader.filename, reader.tgz_md5)
            reader(str(self.data_dir), train=True, download=False)
        except UnsafeArchiveError:
            raise
        except Exception as error:  # torchvision raises RuntimeError / URLError / OSError here
            raise DatasetNotFoundError(
                f"{self.missing_data_message()} ({type(error).__name__}: {error})"
            ) from None

    def _arrays(self, train: bool) -> tuple[np.ndarray, np.ndarray]:
        if self.synthetic:
            reader = _StandinCIFAR10 if self.dataset == "cifar10" else _StandinCIFAR100
        else:
            reader = CIFAR10 if self.dataset == "cifar10" else CIFAR100
        try:
            data = reader(str(self.data_dir), train=train, download=False)
        except RuntimeError as error:
            raise DatasetNotFoundError(f"{self.missing_data_message()} ({error})") from None
        self.class_names = list(data.classes)
        return np.asarray(data.data), np.asarray(data.targets, dtype=np.int64)

    def _folder(self, split: str) -> list[ImageRecord]:
        folder = self.data_dir / split
        if not folder.is_dir():
            raise DatasetNotFoundError(f"{folder} does not exist: {self.missing_data_message()}")
        classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
        if split == "train":
            self.class_names = classes
        elif classes != self.class_names:
            raise DatasetNotFoundError(f"{folder} classes {classes} differ from train's {self.class_names}")
        records = [ImageRecord(p, i, c) for i, c in enumerate(classes) for p in list_images(folder / c)]
        empty = [c for c in classes if not any(r.group == c for r in records)]
        if empty:
            raise DatasetNotFoundError(f"{folder}: class folders {empty} hold no images")
        return records

    # ----------------------------------------------------------------------------------------- lightning
    def setup(self, stage: str) -> None:
        if self.datasets:
            return
        if self.dataset == "folder":
            train_records, test_records = self._folder("train"), self._folder("test")
            train_labels = np.array([r.label for r in train_records])
        else:
            train_images, train_labels = self._arrays(train=True)
            test_images, test_labels = self._arrays(train=False)
        keep = self._long_tailed(train_labels)
        kept, held = stratified_holdout(train_labels[keep], self.calibration_fraction, self.seed)
        train_index, calibration_index = keep[kept], keep[held]
        train_index = train_index[self._small_data(train_labels[train_index])]
        if self.dataset == "folder":
            pick = lambda records, idx: [records[i] for i in idx]  # noqa: E731
            self.datasets = {
                "train": ImageRecordDataset(
                    pick(train_records, train_index), self.train_transform(), self.bad_files
                ),
                "calibration": ImageRecordDataset(
                    pick(train_records, calibration_index), self.eval_transform(), self.bad_files
                ),
                "test": ImageRecordDataset(test_records, self.eval_transform(), self.bad_files),
            }
        else:
            names, tag = self.class_names, self.dataset
            self.datasets = {
                "train": ArrayImageDataset(
                    train_images[train_index],
                    train_labels[train_index],
                    names,
                    self.train_transform(),
                    f"{tag}/train",
                ),
                "calibration": ArrayImageDataset(
                    train_images[calibration_index],
                    train_labels[calibration_index],
                    names,
                    self.eval_transform(),
                    f"{tag}/calibration",
                ),
                "test": ArrayImageDataset(
                    test_images, test_labels, names, self.eval_transform(), f"{tag}/test"
                ),
            }
        counts = np.bincount(train_labels[train_index], minlength=self.num_classes)
        held_counts = np.bincount(train_labels[calibration_index], minlength=self.num_classes)
        held_out = (
            f"{len(calibration_index)} held out for calibration ({int((held_counts == 0).sum())} classes empty)"
            if self.calibration_fraction
            else "no calibration split (validation uses the test set)"
        )
        log.info(
            "%s: %d train images (class sizes %d..%d), %s, %d test",
            self.dataset,
            len(train_index),
            counts.min(),
            counts.max(),
            held_out,
            len(self.datasets["test"]),
        )

    def _long_tailed(self, labels: np.ndarray) -> np.ndarray:
        """Indices kept by the long-tailed profile (all of them when balanced)."""
        if not self.imbalance_factor or self.imbalance_factor == 1:
            return np.arange(len(labels))
        num_classes = int(labels.max()) + 1
        counts = long_tailed_counts(int(np.bincount(labels).max()), num_classes, self.imbalance_factor)
        rng = np.random.default_rng(self.seed)
        kept = [rng.permutation(np.flatnonzero(labels == c))[:n] for c, n in enumerate(counts)]
        return np.sort(np.concatenate(kept))

    def _small_data(self, labels: np.ndarray) -> np.ndarray:
        """Positions kept by ``train_fraction`` / ``samples_per_class`` (all when neither is set), chosen per class
        from a permutation seeded by ``seed``, so every run with the same seed trains on the same images. The
        calibration split is held out before, so validation does not shrink with the training set."""
        if self.train_fraction is None and self.samples_per_class is None:
            return np.arange(len(labels))
        rng = np.random.default_rng([self.seed, 1])
        kept = []
        for c in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == c))
            count = self.samples_per_class or max(1, int(self.train_fraction * len(members)))
            kept.append(members[:count])
        return np.sort(np.concatenate(kept))

    def val_dataloader(self) -> DataLoader:
        """The calibration split (held out from training); the test set when there is none."""
        split = "calibration" if len(self.datasets["calibration"]) else "test"
        return self.make_loader(self.datasets[split], train=False)

    def calibration_dataloader(self) -> DataLoader:
        if not len(self.datasets["calibration"]):
            raise DatasetNotFoundError("calibration_fraction is 0: there is no calibration split to fit on")
        return self.make_loader(self.datasets["calibration"], train=False)

    @property
    def num_classes(self) -> int:
        if not self.class_names:
            if self.dataset == "folder":
                self._folder("train")
            else:
                self.class_names = [str(i) for i in range(10 if self.dataset == "cifar10" else 100)]
        return len(self.class_names)

    def groups_for(self, split: str) -> list[str]:
        return list(self.class_names)

    # ---------------------------------------------------------------------------------------- transforms
    def _resize(self) -> list[A.BasicTransform]:
        """Folders hold any size; CIFAR is 32 px and only resized when another ``image_size`` is asked for."""
        needed = self.dataset == "folder" or self.image_size != 32
        return [A.Resize(self.image_size, self.image_size)] if needed else []

    def train_transform(self) -> A.Compose:
        size = self.image_size
        steps = [
            *self._resize(),
            A.PadIfNeeded(
                size + 2 * self.crop_padding,
                size + 2 * self.crop_padding,
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
            ),
            A.RandomCrop(size, size),
        ]
        if self.flip:
            steps.append(A.HorizontalFlip(p=0.5))
        return A.Compose([*steps, A.ToFloat(max_value=255.0), ToTensorV2()])

    def eval_transform(self) -> A.Compose:
        return A.Compose([*self._resize(), A.ToFloat(max_value=255.0), ToTensorV2()])
