"""What every image-classification datamodule shares, whatever its files look like on disk.

* ``imbalance_factor: rho`` keeps n_c = floor(n_max * rho^(-c / (C - 1))) training images of class c (seeded
  choice): the long-tailed profile of CIFAR-LT and Fashion-MNIST-LT. The test set stays balanced.
* ``calibration_fraction`` holds out a stratified share of the (long-tailed) training set, floor per class, so
  tail classes may get none (SCTL's setting). It is the validation split and what calibration callbacks fit on.
* ``train_fraction`` / ``samples_per_class``: small-data subsets, drawn after the hold-out (so validation does not
  shrink with the training set), seeded, the same images for every run with the same seed.
* training augmentation: pad ``crop_padding``, random crop, horizontal ``flip``.

A subclass reads one split (:meth:`LabeledImagesDataModule.read_split`: in-memory arrays, or image files as
records) and names its classes; the splits, subsets, loaders and transforms are this module's.

Batches: ``image`` (B, C, S, S) in [0, 1], ``label``, ``group`` (class name), ``path``.
"""

from __future__ import annotations

import logging
from typing import Any

import albumentations as A
import cv2
import numpy as np
from albumentations.pytorch import ToTensorV2
from torch.utils.data import DataLoader, Dataset

from datamodules.base import (
    BaseDataModule,
    DatasetNotFoundError,
    ImageRecord,
    ImageRecordDataset,
)
from datamodules.class_subsets import long_tailed_counts, stratified_holdout
from datamodules.seeded_sampling import ReseededTransformMixin, SeededIndex

log = logging.getLogger(__name__)


class ArrayImageDataset(ReseededTransformMixin, Dataset):
    """Images held in memory as (N, H, W, C) uint8, as dict samples like :class:`ImageRecordDataset`'s."""

    def __init__(
        self, images: np.ndarray, labels: np.ndarray, names: list[str], transform: A.Compose, tag: str
    ) -> None:
        self.images, self.labels, self.names, self.transform, self.tag = images, labels, names, transform, tag
        self._seeded_from: int | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int | SeededIndex) -> dict[str, Any]:
        index = self.seeded(index)
        label = int(self.labels[index])
        return {
            "image": self.transform(image=self.images[index])["image"],
            "label": label,
            "group": self.names[label],
            "path": f"{self.tag}/{index}",
        }


Items = np.ndarray | list[ImageRecord]


class LabeledImagesDataModule(BaseDataModule):
    """Train / calibration / test splits of a labeled image dataset, long-tailed and small-data options included.

    Args:
        imbalance_factor: rho of the long-tailed profile (null or 1: balanced).
        calibration_fraction: Share of each training class held out for validation and calibration.
        train_fraction: Small-data setting: keep this share of each class's training images (seeded, at least one).
        samples_per_class: Small-data setting: keep this many training images per class (seeded); not with
            ``train_fraction``.
        crop_padding: Padding before the random crop (CIFAR standard: 4).
        flip: Random horizontal flip in training.
        **kwargs: The shared arguments of :class:`~datamodules.base.BaseDataModule`.
    """

    native_size: int = 32  # the stored images' side: other image sizes are resized (subclasses may pad)

    def __init__(
        self,
        imbalance_factor: float | None = None,
        calibration_fraction: float = 0.1,
        train_fraction: float | None = None,
        samples_per_class: int | None = None,
        crop_padding: int = 4,
        flip: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if imbalance_factor is not None and imbalance_factor < 1:
            raise ValueError(f"data.init_args.imbalance_factor must be >= 1, got {imbalance_factor}")
        if not 0 <= calibration_fraction < 1:
            raise ValueError(
                f"data.init_args.calibration_fraction must be in [0, 1), got {calibration_fraction}"
            )
        if train_fraction is not None and not 0 < train_fraction <= 1:
            raise ValueError(f"data.init_args.train_fraction must be in (0, 1], got {train_fraction}")
        if samples_per_class is not None and samples_per_class < 1:
            raise ValueError(f"data.init_args.samples_per_class must be >= 1, got {samples_per_class}")
        if train_fraction is not None and samples_per_class is not None:
            raise ValueError("data.init_args: set train_fraction or samples_per_class, not both")
        if crop_padding < 0:
            raise ValueError(f"data.init_args.crop_padding must be >= 0, got {crop_padding}")
        self.imbalance_factor = imbalance_factor
        self.calibration_fraction = calibration_fraction
        self.train_fraction = train_fraction
        self.samples_per_class = samples_per_class
        self.crop_padding = crop_padding
        self.flip = flip
        self.class_names: list[str] = []

    # --------------------------------------------------------------------------------- what a subclass reads
    def read_split(self, train: bool) -> tuple[Items, np.ndarray]:
        """The split's images ((N, H, W, C) uint8 array, or records of files) and int64 labels; sets
        ``class_names``."""
        raise NotImplementedError

    def default_class_names(self) -> list[str]:
        """Class names before any file is read (``num_classes`` is asked while the model is built)."""
        raise NotImplementedError

    @property
    def tag(self) -> str:
        """How sample paths start (``<tag>/<split>/<index>``) for in-memory images."""
        return getattr(self, "dataset", self.layout)

    # ----------------------------------------------------------------------------------------- lightning
    def setup(self, stage: str) -> None:
        if self.datasets or self.predicting_a_folder(stage):
            return
        train_items, train_labels = self.read_split(train=True)
        test_items, test_labels = self.read_split(train=False)
        keep = self._long_tailed(train_labels)
        kept, held = stratified_holdout(train_labels[keep], self.calibration_fraction, self.seed)
        train_index, calibration_index = keep[kept], keep[held]
        train_index = train_index[self._small_data(train_labels[train_index])]
        self.datasets = {
            "train": self._dataset(train_items, train_labels, train_index, self.train_transform(), "train"),
            "calibration": self._dataset(
                train_items, train_labels, calibration_index, self.eval_transform(), "calibration"
            ),
            "test": self._dataset(
                test_items, test_labels, np.arange(len(test_labels)), self.eval_transform(), "test"
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
            self.tag,
            len(train_index),
            counts.min(),
            counts.max(),
            held_out,
            len(self.datasets["test"]),
        )

    def _dataset(
        self, items: Items, labels: np.ndarray, index: np.ndarray, transform: A.Compose, split: str
    ) -> Dataset:
        if isinstance(items, np.ndarray):
            return ArrayImageDataset(
                items[index], labels[index], self.class_names, transform, f"{self.tag}/{split}"
            )
        return ImageRecordDataset([items[i] for i in index], transform, self.bad_files)

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
            self.class_names = self.default_class_names()
        return len(self.class_names)

    def groups_for(self, split: str) -> list[str]:
        return list(self.class_names)

    # ---------------------------------------------------------------------------------------- transforms
    def to_model_size(self) -> list[A.BasicTransform]:
        """Steps from the stored images to ``image_size``: none at the native size, else a resize."""
        if self.image_size == self.native_size:
            return []
        return [A.Resize(self.image_size, self.image_size)]

    def train_transform(self) -> A.Compose:
        size, pad = self.image_size, self.crop_padding
        steps = [
            *self.to_model_size(),
            A.PadIfNeeded(size + 2 * pad, size + 2 * pad, border_mode=cv2.BORDER_CONSTANT, fill=0),
            A.RandomCrop(size, size),
        ]
        if self.flip:
            steps.append(A.HorizontalFlip(p=0.5))
        return A.Compose([*steps, A.ToFloat(max_value=255.0), ToTensorV2()])

    def eval_transform(self) -> A.Compose:
        return A.Compose([*self.to_model_size(), A.ToFloat(max_value=255.0), ToTensorV2()])

    def predict_transform(self) -> A.Compose:
        """A user's image, of any size: resized to ``image_size`` whole (no crop), as a tensor in [0, 1]."""
        size = self.image_size
        return A.Compose(
            [A.Resize(size, size), *self.to_channels(), A.ToFloat(max_value=255.0), ToTensorV2()]
        )

    def to_channels(self) -> list[A.BasicTransform]:
        """Steps from an RGB file to the model's channels (none: the datasets here are RGB)."""
        return []
