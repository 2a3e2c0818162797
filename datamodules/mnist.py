"""MNIST, Fashion-MNIST and KMNIST from their published IDX files: real benchmark data on every machine here.

Debian's ``dataset-fashion-mnist`` (``make install`` installs it) puts the official Fashion-MNIST files in
``/usr/share/datasets/fashion-mnist``, the default ``root`` of ``dataset: fashion_mnist``. Under ``root`` the
four files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-*``; gzipped or not) are read
directly or from torchvision's ``<root>/<FashionMNIST|MNIST|KMNIST>/raw/``. Missing files are downloaded from the
official mirrors torchvision lists (MD5-checked, resumable) when ``download: true`` and the machine is online.

28 px grayscale images become ``image_size`` by zero padding (``to_size: pad``, the usual 28 -> 32 for CIFAR
networks) or resizing, with 1 channel or 3 (the gray repeated, for networks and normalizations built for RGB).
The splits (long-tailed profile, calibration hold-out, small-data subsets) and the augmentation (pad-crop; flip,
on by default for garments only) are :class:`~datamodules.labeled_images.LabeledImagesDataModule`'s.
"""

from __future__ import annotations

import urllib.error
from pathlib import Path
from typing import Any, Literal

import albumentations as A
import cv2
import numpy as np
from torchvision.datasets import KMNIST, MNIST, FashionMNIST

from datamodules.archives import ChecksumError, download_resumable
from datamodules.base import DatasetNotFoundError
from datamodules.idx_files import IDXFileError, read_idx
from datamodules.labeled_images import LabeledImagesDataModule
from datamodules.standins.mnist import STANDIN_VERSION, write_mnist_standin

DatasetName = Literal["fashion_mnist", "mnist", "kmnist"]
# torchvision's lists of the official mirrors, file names and MD5s (the published .gz files)
SOURCES: dict[str, type] = {"fashion_mnist": FashionMNIST, "mnist": MNIST, "kmnist": KMNIST}
DEFAULT_ROOTS = {
    "fashion_mnist": "/usr/share/datasets/fashion-mnist",
    "mnist": "data/mnist",
    "kmnist": "data/kmnist",
}
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class MNISTDataModule(LabeledImagesDataModule):
    """Fashion-MNIST, MNIST or KMNIST (balanced or long-tailed), with a stratified calibration split.

    Args:
        dataset: ``fashion_mnist``, ``mnist`` or ``kmnist``.
        root: Folder with the IDX files (default: Debian's folder for Fashion-MNIST, ``data/<dataset>`` else).
        download: Download missing files from the official mirrors (needs the internet and a writable ``root``).
        channels: 1 (gray) or 3 (the gray repeated).
        to_size: ``pad`` (zero padding around the 28 px image) or ``resize`` to reach ``image_size``.
        flip: Random horizontal flip in training (default: on for Fashion-MNIST, off for digits and kanji).
        **kwargs: The split and augmentation arguments of
            :class:`~datamodules.labeled_images.LabeledImagesDataModule` (imbalance_factor, calibration_fraction,
            train_fraction, samples_per_class, crop_padding) and the shared ones of
            :class:`~datamodules.base.BaseDataModule` (batch_size, num_workers, image_size, synthetic,
            standin_size, bad_files, pin_memory, seed).
    """

    layout = "mnist"
    standin_version = STANDIN_VERSION
    native_size = 28

    def __init__(
        self,
        dataset: DatasetName = "fashion_mnist",
        root: str | None = None,
        download: bool = True,
        channels: int = 3,
        to_size: Literal["pad", "resize"] = "pad",
        flip: bool | None = None,
        **kwargs: Any,
    ) -> None:
        if dataset not in SOURCES:
            raise ValueError(f"data.init_args.dataset must be one of {sorted(SOURCES)}, got {dataset!r}")
        if channels not in (1, 3):
            raise ValueError(f"data.init_args.channels must be 1 or 3, got {channels}")
        if to_size not in ("pad", "resize"):
            raise ValueError(f"data.init_args.to_size must be pad or resize, got {to_size!r}")
        kwargs.setdefault("image_size", 32)
        kwargs.setdefault("batch_size", 128)
        flip = dataset == "fashion_mnist" if flip is None else flip
        super().__init__(root=root or DEFAULT_ROOTS[dataset], flip=flip, **kwargs)
        if to_size == "pad" and self.image_size < self.native_size:
            raise ValueError(
                f"data.init_args.to_size pad cannot shrink 28 px images to image_size {self.image_size}: "
                "use to_size resize"
            )
        self.dataset = dataset
        self.download = download
        self.channels = channels
        self.to_size = to_size

    # ------------------------------------------------------------------------------------------ on disk
    def write_standin(self, out_dir: Path) -> None:
        write_mnist_standin(out_dir, size=self.standin_size, seed=self.seed)

    def missing_data_message(self) -> str:
        hint = (
            "`make install` installs Debian's dataset-fashion-mnist there, "
            if self.dataset == "fashion_mnist"
            else ""
        )
        return (
            f"{self.dataset} IDX files not found under data.init_args.root={self.root!r} and not downloaded "
            f"(offline, or download false?): {hint}or put the four files "
            f"({', '.join(FILES['train'] + FILES['test'])}, .gz or not) there, "
            "or run on the built-in stand-in with --data.init_args.synthetic true"
        )

    def file_path(self, name: str) -> Path | None:
        """Where ``name`` is under ``data_dir`` (plain or gzipped; flat or torchvision's raw/ folder), or None."""
        folders = [self.data_dir, self.data_dir / SOURCES[self.dataset].__name__ / "raw"]
        for folder in folders:
            for candidate in (folder / name, folder / f"{name}.gz"):
                if candidate.is_file():
                    return candidate
        return None

    def check_data_present(self) -> None:
        missing = [n for split in FILES.values() for n in split if self.file_path(n) is None]
        if missing and self.download:
            self._download(missing)
            missing = [n for n in missing if self.file_path(n) is None]
        if missing:
            raise DatasetNotFoundError(f"{self.missing_data_message()} (missing: {', '.join(missing)})")

    def _download(self, names: list[str]) -> None:
        """The missing files from the first official mirror that answers, each checked against its MD5."""
        source = SOURCES[self.dataset]
        checksums = dict(source.resources)
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DatasetNotFoundError(
                f"{self.missing_data_message()} (cannot create {self.data_dir}: {error.strerror})"
            ) from None
        for name in names:
            archive = f"{name}.gz"
            errors = []
            for mirror in source.mirrors:
                try:
                    download_resumable(mirror + archive, self.data_dir / archive, md5=checksums[archive])
                    break
                except (urllib.error.URLError, OSError, ChecksumError) as error:
                    errors.append(f"{mirror}: {error}")
            else:
                raise DatasetNotFoundError(f"{self.missing_data_message()} ({'; '.join(errors)})")

    def read_split(self, train: bool) -> tuple[np.ndarray, np.ndarray]:
        images_name, labels_name = FILES["train" if train else "test"]
        paths = [self.file_path(images_name), self.file_path(labels_name)]
        if None in paths:
            raise DatasetNotFoundError(self.missing_data_message())
        images, labels = read_idx(paths[0]), read_idx(paths[1])
        if images.ndim != 3 or labels.ndim != 1:
            raise IDXFileError(
                f"{paths[0]} / {paths[1]}: expected images (N, H, W) and labels (N,), "
                f"got {images.shape} and {labels.shape}"
            )
        if len(images) != len(labels):
            raise IDXFileError(f"{paths[0]} holds {len(images)} images but {paths[1]} {len(labels)} labels")
        self.class_names = self.default_class_names()
        if labels.size and int(labels.max()) >= len(self.class_names):
            raise IDXFileError(
                f"{paths[1]}: label {int(labels.max())} is out of range for {len(self.class_names)} classes"
            )
        images = images.astype(np.uint8)[..., None]
        return (np.repeat(images, 3, axis=-1) if self.channels == 3 else images), labels.astype(np.int64)

    def default_class_names(self) -> list[str]:
        return list(SOURCES[self.dataset].classes)

    def to_channels(self) -> list[A.BasicTransform]:
        """A user's RGB file in gray, as the model saw Fashion-MNIST: 1 channel, or the gray repeated."""
        return [A.ToGray(num_output_channels=self.channels, p=1.0)]

    def to_model_size(self) -> list[A.BasicTransform]:
        if self.image_size == self.native_size:
            return []
        if self.to_size == "resize":
            return [A.Resize(self.image_size, self.image_size)]
        size = self.image_size
        return [A.PadIfNeeded(size, size, border_mode=cv2.BORDER_CONSTANT, fill=0)]
