"""CIFAR-10 / CIFAR-100 (balanced or long-tailed) and image folders, with a held-out calibration split.

* ``dataset: cifar10 | cifar100`` reads torchvision's on-disk format under ``root`` (downloaded when
  ``download: true`` and online); ``dataset: folder`` reads ``<root>/{train,test}/<class>/*`` for a user's own
  classes (class names sorted).
* the long-tailed profile, the calibration hold-out, the small-data subsets and the standard CIFAR augmentation
  (pad 4, random crop, horizontal flip) are :class:`~datamodules.labeled_images.LabeledImagesDataModule`'s.

Batches: ``image`` (B, 3, S, S) in [0, 1], ``label``, ``group`` (class name), ``path``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import albumentations as A
import numpy as np
from torchvision.datasets import CIFAR10, CIFAR100

from datamodules.archives import UnsafeArchiveError, download_and_extract
from datamodules.base import DatasetNotFoundError, ImageRecord
from datamodules.image_io import list_images
from datamodules.labeled_images import LabeledImagesDataModule
from datamodules.standins.cifar import STANDIN_VERSION, write_cifar_standin

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


class CIFARDataModule(LabeledImagesDataModule):
    """CIFAR-10/100, their long-tailed variants, or an image folder, with a stratified calibration split.

    Args:
        dataset: ``cifar10``, ``cifar100`` or ``folder``.
        download: Download CIFAR when it is missing (needs the internet).
        **kwargs: The split and augmentation arguments of
            :class:`~datamodules.labeled_images.LabeledImagesDataModule` (imbalance_factor, calibration_fraction,
            train_fraction, samples_per_class, crop_padding, flip) and the shared ones of
            :class:`~datamodules.base.BaseDataModule` (root, batch_size, num_workers, image_size, synthetic,
            standin_size, bad_files, pin_memory, seed).
    """

    layout = "cifar"
    standin_version = STANDIN_VERSION

    def __init__(self, dataset: DatasetName = "cifar10", download: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("root", "data/cifar")
        kwargs.setdefault("image_size", 32)
        kwargs.setdefault("batch_size", 128)
        super().__init__(**kwargs)
        if dataset not in ("cifar10", "cifar100", "folder"):
            raise ValueError(f"data.init_args.dataset must be cifar10, cifar100 or folder, got {dataset!r}")
        if dataset == "folder" and self.synthetic:
            raise ValueError(
                "the stand-in is written in CIFAR's layout: use dataset cifar10 or cifar100 with synthetic"
            )
        self.dataset = dataset
        self.download = download

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

    def read_split(self, train: bool) -> tuple[np.ndarray | list[ImageRecord], np.ndarray]:
        if self.dataset == "folder":
            records = self._folder("train" if train else "test")
            return records, np.array([r.label for r in records], dtype=np.int64)
        return self._arrays(train)

    def default_class_names(self) -> list[str]:
        if self.dataset == "folder":
            self._folder("train")
            return self.class_names
        return [str(i) for i in range(10 if self.dataset == "cifar10" else 100)]

    def to_model_size(self) -> list[A.BasicTransform]:
        """Folders hold any size; CIFAR is 32 px and only resized when another ``image_size`` is asked for."""
        if self.dataset == "folder":
            return [A.Resize(self.image_size, self.image_size)]
        return super().to_model_size()
