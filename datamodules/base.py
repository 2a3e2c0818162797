"""The behavior every DataModule shares: common arguments, loaders, the bad-file policy and stand-in building.

A layout module (forensynths.py, ...) only says where its files are and how to transform them; this base turns
that into loaders whose batches are dicts with the keys of :class:`datamodules.batch.Batch` (``image``,
``label``, ``group``, ``path``...), skips or rejects undecodable files as configured, and builds the stand-in dataset when
``synthetic`` is true.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from torch.utils.data import (
    DataLoader,
    Dataset,
    DistributedSampler,
    Sampler,
)

from datamodules.batch import USES_EVERY_TRAINING_IMAGE, SplitInfo, collate_skipping_bad
from datamodules.image_io import BadImageError, describe_others, read_rgb, survey_images
from datamodules.preprocessing import pipeline
from datamodules.seeded_sampling import EpochSeededSampler, ReseededTransformMixin, SeededIndex

log = logging.getLogger(__name__)

BadFiles = Literal["skip", "error"]
StandinSize = Literal["tiny", "small"]


class DatasetNotFoundError(FileNotFoundError):
    """The data a DataModule needs is not on disk; the message says where to get it or how to use the stand-in."""


@dataclass(frozen=True)
class ImageRecord:
    """One image file with its integer label (-1 when unknown) and its group (generator, category, display...)."""

    path: Path
    label: int
    group: str


def skip_or_raise(error: BadImageError, bad_files: BadFiles, what: str) -> None:
    """The bad-file policy of every dataset: ``error`` re-raises one line naming the file and the switch,
    ``skip`` logs it (the collate function then drops the sample and counts it)."""
    if bad_files == "error":
        raise BadImageError(
            f"{error} (set data.init_args.bad_files: skip to skip and count such files)"
        ) from None
    log.warning("skipping unreadable %s %s", what, error)


class ImageRecordDataset(ReseededTransformMixin, Dataset):
    """Reads :class:`ImageRecord` files and applies an albumentations transform, one dict per sample.

    An undecodable file yields ``None`` under ``bad_files="skip"`` (the collate function drops it and counts
    it) and raises a one-line :class:`BadImageError` naming the file under ``bad_files="error"``.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        transform: Callable[..., dict[str, Any]],
        bad_files: BadFiles = "skip",
    ) -> None:
        self.records = list(records)
        self.transform = transform
        self.bad_files = bad_files

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int | SeededIndex) -> dict[str, Any] | None:
        record = self.records[self.seeded(index)]
        try:
            image = read_rgb(record.path)
        except BadImageError as error:
            skip_or_raise(error, self.bad_files, "image")
            return None
        return {
            "image": self.transform(image=image)["image"],
            "label": record.label,
            "group": record.group,
            "path": str(record.path),
        }


class BaseDataModule(L.LightningDataModule):
    """Arguments and loaders shared by every DataModule.

    Args:
        root: Folder holding the dataset in its published layout. With ``synthetic: true`` the stand-in is
            built (once) and read under ``<root>/<layout>_standin_<standin_size>``.
        batch_size: Samples per batch and per device.
        num_workers: DataLoader worker processes (0 reads in the main process).
        image_size: Side of the square crop fed to the model.
        synthetic: Build and use the stand-in made from real sample photos instead of the published data.
        standin_size: ``tiny`` (a few images per folder, for tests) or ``small`` (enough for a demo).
        bad_files: ``skip`` drops undecodable files and counts them; ``error`` stops at the first one.
        pin_memory: Page-locked host memory for faster GPU copies (default: on when CUDA is available).
        seed: Seed of dataset-level randomness (subsets, stand-in content); augmentation follows the
            trainer's ``seed_everything``.
        shuffle: Shuffle the training set each epoch (off: fixed order, for comparing runs exactly; under
            DDP, rank ``r`` then reads samples ``r, r + world_size, ...``).
        predict_dir: ``predict`` on this folder (searched recursively) instead of the test split: your own
            images (or, per layout, RGB-D pairs, ...) get one row each in ``predictions.csv``, label -1.
    """

    layout: str = "base"
    standin_version: int | None = None  # what the layout's stand-in writer records in STANDIN.json
    # the split of ``self.datasets`` (filled by ``setup``) each loader reads; a layout changes what differs
    loader_splits: dict[str, str] = {"train": "train", "val": "val", "test": "test", "predict": "test"}

    def __init__(
        self,
        root: str = "data",
        batch_size: int = 64,
        num_workers: int = 4,
        image_size: int = 224,
        synthetic: bool = False,
        standin_size: StandinSize = "small",
        bad_files: BadFiles = "skip",
        pin_memory: bool | None = None,
        seed: int = 0,
        shuffle: bool = True,
        predict_dir: str | None = None,
    ) -> None:
        super().__init__()
        if bad_files not in ("skip", "error"):
            raise ValueError(f"data.init_args.bad_files must be 'skip' or 'error', got {bad_files!r}")
        if batch_size < 1 or image_size < 1 or num_workers < 0:
            raise ValueError(
                f"batch_size and image_size must be >= 1 and num_workers >= 0, got "
                f"batch_size={batch_size}, image_size={image_size}, num_workers={num_workers}"
            )
        self.root = root
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.image_size = image_size
        self.synthetic = synthetic
        self.standin_size = standin_size
        self.bad_files = bad_files
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.seed = seed
        self.shuffle = shuffle
        self.predict_dir = predict_dir
        self.skipped_files: Counter[str] = Counter()
        self.datasets: dict[str, Dataset] = {}

    def __str__(self) -> str:
        """Name and data folder only: Lightning's own ``__str__`` calls every loader method (jsonargparse prints
        it in a link warning), which would read the data before ``setup`` and cache a ``predict_dir`` split."""
        return f"{type(self).__name__}(data_dir={str(self.data_dir)!r})"

    __repr__ = __str__

    # ----------------------------------------------------------------------------------------------- data
    @property
    def data_dir(self) -> Path:
        """Where the data is read from: ``root``, or the stand-in folder under it when ``synthetic``."""
        if self.synthetic:
            return Path(self.root) / f"{self.layout}_standin_{self.standin_size}"
        return Path(self.root)

    def predicting_a_folder(self, stage: str | None = None) -> bool:
        """Whether this run only scores ``predict_dir`` (``stage`` predict, or a trainer predicting): the dataset
        itself is then not needed (a checkpoint holds what the model learnt from it, class names included)."""
        if not self.predict_dir:
            return False
        if stage is not None:
            return stage == "predict"
        fn = getattr(getattr(self.trainer, "state", None), "fn", None) if self.trainer is not None else None
        return str(getattr(fn, "value", fn)) == "predict"

    def prepare_data(self) -> None:
        """Build the stand-in when asked to; otherwise make sure the data is there (subclasses may download).
        Nothing for a predict on ``predict_dir``: scoring your folder needs no dataset."""
        if self.predicting_a_folder():
            return
        if self.synthetic:
            marker = self.data_dir / "STANDIN.json"
            if marker.is_file() and json.loads(marker.read_text()).get("version") == self.standin_version:
                return
            if self.data_dir.exists():
                log.warning(
                    "%s is an older stand-in (version != %s): rebuilding it",
                    self.data_dir,
                    self.standin_version,
                )
                shutil.rmtree(self.data_dir)
            self.write_standin(self.data_dir)
            return
        self.check_data_present()

    def write_standin(self, out_dir: Path) -> None:
        """Write this layout's stand-in dataset into ``out_dir`` (atomically, with a STANDIN.json marker)."""
        raise NotImplementedError(
            f"{type(self).__name__} has no stand-in; set data.init_args.synthetic: false"
        )

    def check_data_present(self) -> None:
        """Raise :class:`DatasetNotFoundError` with :meth:`missing_data_message` when ``root`` is missing."""
        if not Path(self.root).is_dir():
            raise DatasetNotFoundError(self.missing_data_message())

    def missing_data_message(self) -> str:
        return f"data.init_args.root={self.root!r} does not exist"

    # -------------------------------------------------------------------------------------------- loaders
    def make_loader(self, dataset: Dataset, train: bool, sampler: Sampler | None = None) -> DataLoader:
        """A DataLoader with the shared policy: shuffle and drop the last partial batch only when training, and
        drop nothing for a model that fits state from every training image (``USES_EVERY_TRAINING_IMAGE``).
        ``sampler``: an order of the datamodule's own (FF++'s triplets), kept whole (no shuffle, nothing dropped)."""
        own_order = sampler is not None
        trainer = self.trainer
        model = getattr(trainer, "lightning_module", None) if trainer is not None else None
        keep_every_image = bool(getattr(model, USES_EVERY_TRAINING_IMAGE, False))
        if not own_order and train and not self.shuffle and trainer is not None and trainer.world_size > 1:
            # Lightning would replace the loader's sampler by a shuffling DistributedSampler for training
            sampler = DistributedSampler(
                dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
            )
        shuffle = train and self.shuffle and not own_order
        if train and not own_order and sampler is None and (trainer is None or trainer.world_size == 1):
            # the order and each sample's augmentation from the epoch's draw: resume repeats them exactly
            seeded = isinstance(dataset, ReseededTransformMixin)
            sampler, shuffle = EpochSeededSampler(len(dataset), shuffle, seeded), False
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            sampler=sampler,
            # workers' seeds from a generator of the loader's own: loading never draws from the global stream,
            # which the model's dropout and the checkpoint's random states are about
            generator=torch.Generator().manual_seed(torch.initial_seed() % 2**63),
            drop_last=train and not own_order and not keep_every_image and len(dataset) > self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0 and train,
            collate_fn=collate_skipping_bad,
        )

    def loader(self, stage: str) -> DataLoader:
        """The loader of ``stage`` (train, val, test, predict) over the split ``loader_splits`` names."""
        return self.make_loader(self.datasets[self.loader_splits[stage]], train=stage == "train")

    def train_dataloader(self) -> DataLoader:
        return self.loader("train")

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.loader("test")

    def predict_dataloader(self) -> DataLoader:
        """``predict_dir``'s inputs when given, else the split ``loader_splits`` names (the test split)."""
        if not self.predict_dir:
            return self.loader("predict")
        if "predict_dir" not in self.datasets:
            folder = Path(self.predict_dir)
            if not folder.is_dir():
                raise DatasetNotFoundError(f"data.init_args.predict_dir={self.predict_dir!r} is not a folder")
            self.datasets["predict_dir"] = self.predict_dataset(folder)
        return self.make_loader(self.datasets["predict_dir"], train=False)

    def predict_dataset(self, folder: Path) -> Dataset:
        """A folder's images, each as the evaluation transform shows the model test images (label -1)."""
        records = [ImageRecord(p, -1, "predict") for p in self.predict_images(folder)]
        return ImageRecordDataset(records, self.predict_transform(), self.bad_files)

    def predict_images(self, folder: Path) -> list[Path]:
        """The images under ``folder`` (searched recursively); none is a one-line error naming it. What else is
        there (folders named like images, broken links, other files) is counted for the predict's summary."""
        images, others = survey_images(folder)
        if not images:
            raise DatasetNotFoundError(f"data.init_args.predict_dir={str(folder)!r} holds no images")
        self.not_images = describe_others(others, folder)
        self.found_images = len(images)
        return images

    def predict_transform(self) -> Callable:
        """What a user's image goes through before the model (the evaluation transform by default)."""
        if not hasattr(self, "eval_transform"):  # a layout without images reads predict_dir in its own setup
            raise ValueError(
                f"{type(self).__name__} cannot read data.init_args.predict_dir yet: leave it unset to predict on "
                "the test split"
            )
        return self.eval_transform()

    def preprocessing(self) -> list[dict[str, Any]]:
        """What ``predict`` does to an image file before the model, step by step as numbers (``model.json``); []
        for a layout whose inputs are not image files."""
        try:
            transform = self.predict_transform()
        except ValueError:
            return []
        return pipeline(transform)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Count the files the collate function dropped, so the run can report them."""
        if isinstance(batch, dict) and "skipped" in batch:
            skipped = batch.pop("skipped")
            if skipped:
                stage = (
                    self.trainer.state.stage.value if self.trainer and self.trainer.state.stage else "unknown"
                )
                self.skipped_files[stage] += int(skipped)
        return batch

    def teardown(self, stage: str) -> None:
        if self.skipped_files:
            counts = ", ".join(f"{n} in {s}" for s, n in sorted(self.skipped_files.items()))
            log.warning("%s skipped unreadable images: %s (bad_files: skip)", type(self).__name__, counts)
        if stage == "predict" and self.predict_dir and getattr(self, "found_images", None) is not None:
            unreadable = self.skipped_files.get("predict", 0)
            others = getattr(self, "not_images", "")
            log.warning(
                "predict_dir %s: %d images found, %d unreadable (skipped)%s",
                self.predict_dir,
                self.found_images,
                unreadable,
                f"; not images, not scored: {others}" if others else "",
            )

    # ------------------------------------------------------------------------------------------- contracts
    @property
    def num_classes(self) -> int:
        """Number of classes the model must predict (linked to ``model.init_args.num_classes``)."""
        raise NotImplementedError

    def components(self) -> list[tuple[str, bool]]:
        """(what the run read, whether it is a stand-in) for the first line of its result tables."""
        if self.synthetic:
            return [
                (f"data: the {self.layout} stand-in ({self.standin_size}), not the published dataset", True)
            ]
        return [(f"data: {self.root}", False)]

    @property
    def groups(self) -> list[str]:
        """Names that result tables are split by, in a fixed order (the same on every rank)."""
        return []

    def groups_for(self, split: str) -> list[str]:
        """The groups of ``split`` (train, val, test): ``groups`` unless a layout's splits differ."""
        return list(self.groups)

    def split_info(self, split: str) -> SplitInfo:
        """What ``split`` (train, val, test, predict) knows beyond its batches: the one thing a model asks its
        data (``datamodules.batch.SplitInfo``). A layout that knows more extends this with
        ``dataclasses.replace(super().split_info(split), ...)``. A predict split has no groups (a folder of
        your images has none); its pictures are named relative to ``predict_dir`` (else the data folder)."""
        predicting = split == "predict"
        return SplitInfo(
            groups=() if predicting else tuple(self.groups_for(split)),
            class_names=tuple(str(n) for n in getattr(self, "class_names", None) or ()),
            image_size=self.image_size,
            batch_size=self.batch_size,
            root=str(self.predict_dir or self.data_dir) if predicting else str(self.data_dir),
            components=tuple(tuple(c) for c in self.components()),
        )
