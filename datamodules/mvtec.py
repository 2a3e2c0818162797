"""Industrial anomaly detection data in the MVTec AD, MVTec LOCO AD and BTAD layouts, one category per run.

Layouts (``dataset``)::

    mvtec_ad    <root>/<category>/train/good/*.png, test/{good,<defect>}/*.png,
                ground_truth/<defect>/<stem>_mask.png
    mvtec_loco  <root>/<category>/train/good, validation/good, test/{good,logical_anomalies,structural_anomalies},
                ground_truth/<defect>/<stem>/000.png, 001.png ... (one file per annotated region, united)
    btad        <root>/<category>/train/ok, test/{ok,ko}, ground_truth/ko/<stem>.png (or .bmp)

Training images are normal only. ``shots: k`` keeps k of them (seeded; k = 1 is the one-shot regime) and
``epoch_size`` cycles a few-shot set so an epoch still has a batch's worth of samples. More normal images
come from ``extra_normal_dir`` (generated ones) or ``augmented_normals`` (classically augmented copies of the
shots: the control generated images are measured against); ``real_fraction`` keeps the real shots a fixed share
of every epoch, so 1 real beside 200 added images is not 0.5 % of what a baseline learns from. Batches: ``image``
(B, 3, S, S) in [0, 1], ``mask`` (B, 1, S, S) in {0, 1} (zeros for normal images), ``label`` (0 normal,
1 anomalous), ``group`` (the defect type, ``good`` / ``ok`` for normal images), ``path``.

Validation is the test split by default (anomalib's ``same_as_test``): the methods here select no checkpoint,
so it only shows progress; ``val_split: none`` switches it off. MVTec AD downloads itself when online (4.9 GB,
checksum, resumable, safe extraction); the other layouts say where to get them.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import albumentations as A
import numpy as np
from torch.utils.data import DataLoader

from datamodules.anomaly_images import NORMAL, WHERE_TO_GET, AnomalyImageDataset, AnomalyRecord, find_records
from datamodules.archives import download_and_extract
from datamodules.base import (
    BaseDataModule,
    DatasetNotFoundError,
)
from datamodules.batch import SplitInfo
from datamodules.image_io import list_images
from datamodules.normal_balance import control_transform
from datamodules.standins.mvtec import STANDIN_VERSION, write_mvtec_standin
from datamodules.wordnet import expand_keyword

log = logging.getLogger(__name__)

AnomalyDataset = Literal["mvtec_ad", "mvtec_loco", "btad"]
MVTEC_AD_URL = (
    "https://www.mydrive.ch/shares/38536/3830184030e49fe74747669442f0f282/download/420938113-1629952094/"
    "mvtec_anomaly_detection.tar.xz"
)
MVTEC_AD_SHA256 = (
    "cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d"  # as anomalib publishes it
)


class MVTecDataModule(BaseDataModule):
    """One category of an industrial anomaly-detection dataset; full-, few- or one-shot training.

    Args:
        category: Category folder under ``root`` (``bottle``, ``screw``...; BTAD: ``01``); null: the first one
            found (said in the log). The paper protocols run every category, one run each.
        dataset: On-disk layout: ``mvtec_ad``, ``mvtec_loco`` or ``btad``.
        shots: Keep this many normal training images (seeded by ``seed``; 1 = one-shot); null: all of them.
        epoch_size: Training samples per epoch; the training images are cycled to fill it (few-shot runs).
            null: each image once.
        crop_fraction: Center crop keeping this fraction of the side: images are resized to
            ``round(image_size / crop_fraction)`` and center-cropped to ``image_size`` (PatchCore's 256 -> 224:
            0.875); 1: resize straight to ``image_size``.
        augment: Random horizontal flip and small rotation in training (off in the papers' protocols).
        val_split: ``test`` validates on the test split (progress only: no checkpoint is selected), ``none``
            runs no validation.
        download: Download MVTec AD into ``root`` when the category is missing and ``root`` is empty or absent
            (needs the internet); a folder holding anything else is never filled.
        extra_normal_dir: More normal training images (e.g. generated ones), added after the shots are chosen
            and never to a test split: a folder in the MVTec layout (``<dir>/<category>/train/good``), a plain
            folder of images, or a ``tgi_ad_generate`` run folder (its newest ``version_*/generated``).
        augmented_normals: Classically augmented copies of the shots added as normals (each drawn anew: flip,
            rotation within 4 degrees, scale within 3 %, shift within 3 %, gain within 7 %), the control for
            generated normals with the same count; 0: none.
        real_fraction: Share of the real shots in every training epoch when images are added (0.5 keeps them
            at least half of it, cycled); null: each image once, as many reals as there are.
        **kwargs: The shared arguments of :class:`~datamodules.base.BaseDataModule` (root, batch_size,
            num_workers, image_size, synthetic, standin_size, bad_files, pin_memory, seed).
    """

    layout = "mvtec"
    standin_version = STANDIN_VERSION
    loader_splits = BaseDataModule.loader_splits | {"val": "test"}  # anomalib's same_as_test

    def __init__(
        self,
        category: str | None = None,
        dataset: AnomalyDataset = "mvtec_ad",
        shots: int | None = None,
        epoch_size: int | None = None,
        crop_fraction: float = 1.0,
        augment: bool = False,
        val_split: Literal["test", "none"] = "test",
        download: bool = True,
        extra_normal_dir: str | None = None,
        augmented_normals: int = 0,
        real_fraction: float | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("root", "data/mvtec_anomaly_detection")
        super().__init__(**kwargs)
        if dataset not in NORMAL:
            raise ValueError(f"data.init_args.dataset must be one of {sorted(NORMAL)}, got {dataset!r}")
        if shots is not None and shots < 1:
            raise ValueError(f"data.init_args.shots must be >= 1 or null (all images), got {shots}")
        if not 0 < crop_fraction <= 1:
            raise ValueError(f"data.init_args.crop_fraction must be in (0, 1], got {crop_fraction}")
        if val_split not in ("test", "none"):
            raise ValueError(f"data.init_args.val_split must be 'test' or 'none', got {val_split!r}")
        if augmented_normals < 0:
            raise ValueError(f"data.init_args.augmented_normals must be >= 0, got {augmented_normals}")
        if real_fraction is not None and not 0 < real_fraction < 1:
            raise ValueError(f"data.init_args.real_fraction must be in (0, 1) or null, got {real_fraction}")
        self.augmented_normals, self.real_fraction = augmented_normals, real_fraction
        self.category, self.dataset = category, dataset
        self.shots, self.epoch_size, self.crop_fraction, self.augment = (
            shots,
            epoch_size,
            crop_fraction,
            augment,
        )
        self.val_split, self.download, self.extra_normal_dir = val_split, download, extra_normal_dir
        self.datasets: dict[str, AnomalyImageDataset] = {}

    # ------------------------------------------------------------------------------------------ on disk
    def write_standin(self, out_dir: Path) -> None:
        write_mvtec_standin(out_dir, size=self.standin_size, seed=self.seed)

    def categories(self) -> list[str]:
        """Category folders under the data folder (those with a train/ folder)."""
        return sorted(p.name for p in self.data_dir.glob("*") if (p / "train").is_dir())

    @property
    def category_dir(self) -> Path:
        if self.category is None:
            found = self.categories()
            if not found:
                raise DatasetNotFoundError(self.missing_data_message())
            self.category = found[0]
            log.info("data.init_args.category not set: using %r (first of %s)", self.category, found)
        return self.data_dir / self.category

    def missing_data_message(self) -> str:
        category = f"category {self.category}" if self.category else "category"
        return (
            f"no {self.dataset} {category} under data.init_args.root={str(self.data_dir)!r}: "
            f"get {WHERE_TO_GET[self.dataset]}, or run on the built-in stand-in with "
            "--data.init_args.synthetic true"
        )

    def check_data_present(self) -> None:
        present = (self.data_dir / self.category).is_dir() if self.category else bool(self.categories())
        if present:
            return
        occupied = self.data_dir.is_dir() and any(self.data_dir.iterdir())
        if self.dataset == "mvtec_ad" and self.download and occupied:
            # a folder that holds something else (another dataset's layout, a typo'd root): never fill it with 4.9 GB
            raise DatasetNotFoundError(
                f"{self.missing_data_message()} (not downloading MVTec AD into it: it is not empty; point root at an "
                "empty or new folder to download there)"
            )
        if self.dataset == "mvtec_ad" and self.download:
            try:
                download_and_extract(
                    MVTEC_AD_URL, self.data_dir, "mvtec_anomaly_detection.tar.xz", sha256=MVTEC_AD_SHA256
                )
                return
            except OSError as error:  # URLError, timeouts, DNS: offline
                raise DatasetNotFoundError(
                    f"{self.missing_data_message()} (download failed: {type(error).__name__}: {error})"
                ) from None
        raise DatasetNotFoundError(self.missing_data_message())

    # ----------------------------------------------------------------------------------------- lightning
    def setup(self, stage: str) -> None:
        if self.datasets or self.predicting_a_folder(stage):
            return
        if self.synthetic and self.category is not None and not (self.data_dir / self.category).is_dir():
            raise DatasetNotFoundError(
                f"data.init_args.category={self.category!r} is not in the stand-in (it has {self.categories()})"
            )
        if not self.category_dir.is_dir():
            raise DatasetNotFoundError(self.missing_data_message())
        train = find_records(self.category_dir, self.dataset, "train")
        if self.shots is not None:
            if self.shots > len(train):
                raise ValueError(
                    f"data.init_args.shots={self.shots} but {self.category_dir}/train has {len(train)}"
                )
            chosen = np.random.default_rng(self.seed).choice(len(train), self.shots, replace=False)
            train = [train[i] for i in sorted(chosen)]
            log.info("%d-shot: training on %s", self.shots, ", ".join(r.path.name for r in train))
        train += [
            replace(train[i % len(train)], augmented=True, real=False) for i in range(self.augmented_normals)
        ]
        self.real_normals = [r for r in train if not r.augmented]  # the decision threshold's images
        train += self._extra_normals()
        test = find_records(self.category_dir, self.dataset, "test")
        control = control_transform() if self.augmented_normals else None
        self.datasets = {
            "train": AnomalyImageDataset(
                train, self.train_transform(), self.bad_files, self.epoch_size, self.real_fraction, control
            ),
            "test": AnomalyImageDataset(test, self.eval_transform(), self.bad_files),
        }
        log.info(
            "%s/%s: %d normal training images, %d test images (%d anomalous, defects %s)",
            self.dataset,
            self.category,
            len(train),
            len(test),
            sum(r.label for r in test),
            self.groups_for("test")[1:],
        )

    def _extra_normals(self) -> list[AnomalyRecord]:
        """The normal images of ``extra_normal_dir`` (its ``<category>/train/<normal>`` folder when it has one)."""
        if not self.extra_normal_dir:
            return []
        root = Path(self.extra_normal_dir)
        generated = sorted(root.glob("version_*/generated"), key=lambda p: p.stat().st_mtime)
        if generated:  # a generation run's folder (configs/tgi_ad_generate.yaml): its newest version
            root = generated[-1]
        laid_out = root / str(self.category) / "train" / NORMAL[self.dataset]
        folder = laid_out if laid_out.is_dir() else root
        images = list_images(folder, recursive=False) if folder.is_dir() else []
        if not images:
            raise DatasetNotFoundError(
                f"data.init_args.extra_normal_dir={self.extra_normal_dir!r}: no images in {laid_out} or {root}"
            )
        log.info("adding %d normal training images from %s", len(images), folder)
        return [AnomalyRecord(path, 0, NORMAL[self.dataset], real=False) for path in images]

    def normal_images_dataloader(self) -> DataLoader | None:
        """The real normal training images, once each, as test images are shown to the model (no augmented
        copies, no generated normals): what a model's decision threshold is set from, no anomaly needed. None
        when the dataset was not read (a predict on a folder)."""
        if not getattr(self, "real_normals", None):
            return None
        dataset = AnomalyImageDataset(self.real_normals, self.eval_transform(), self.bad_files)
        return self.make_loader(dataset, train=False)

    def val_dataloader(self) -> DataLoader | list:
        return [] if self.val_split == "none" else self.loader("val")

    @property
    def num_classes(self) -> int:
        return 2

    def expand_keyword(self, keyword: str, depth: int = 1) -> dict[str, list[str]]:
        """The nouns WordNet relates to an object's name (synonyms, hypernyms, hyponyms): text knowledge about a
        category, which text-guided generation builds its prompts from."""
        return expand_keyword(keyword, depth)

    def split_info(self, split: str) -> SplitInfo:
        """Every split names its category and the run's title: dataset/category and the shots."""
        regime = "full-shot" if self.shots is None else f"{self.shots}-shot"
        title = f"{self.dataset}/{self.category or ''}, {regime}"
        return replace(super().split_info(split), title=title, category=self.category)

    def groups_for(self, split: str) -> list[str]:
        """Defect types of ``split``, the normal one first (the result table's row order)."""
        if not self.datasets:
            self.setup("fit")
        dataset = self.datasets["train" if split == "train" else "test"]
        normal = NORMAL[self.dataset]
        return [normal] + sorted({r.group for r in dataset.records} - {normal})

    # ---------------------------------------------------------------------------------------- transforms
    def _resize(self) -> list[A.BasicTransform]:
        if self.crop_fraction == 1:
            return [A.Resize(self.image_size, self.image_size)]
        side = round(self.image_size / self.crop_fraction)
        return [A.Resize(side, side), A.CenterCrop(self.image_size, self.image_size)]

    def train_transform(self) -> A.Compose:
        steps = self._resize()
        if self.augment:
            steps += [A.HorizontalFlip(p=0.5), A.Affine(rotate=(-5, 5), border_mode=2, p=0.5)]
        return A.Compose(steps)

    def predict_dataset(self, folder: Path) -> AnomalyImageDataset:
        """A folder of images (any layout, searched recursively), label -1 and no mask."""
        records = [AnomalyRecord(p, -1, "predict") for p in self.predict_images(folder)]
        return AnomalyImageDataset(records, self.eval_transform(), self.bad_files)

    def eval_transform(self) -> A.Compose:
        return A.Compose(self._resize())
