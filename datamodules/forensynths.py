"""CNNDetection / ForenSynths (Wang et al., CVPR 2020): real-vs-generated images, grouped by generator.

Layout::

    <root>/train/<category>/{0_real,1_fake}/*.png
    <root>/val/<category>/{0_real,1_fake}/*.png
    <root>/test/<generator>/[<category>/]{0_real,1_fake}/*.png

Training follows Wang et al.: resize the short side to ``load_size``, Gaussian blur and JPEG re-compression
(each with probability 0.5), random crop, horizontal flip. Test: resize and center crop (either can be switched
off). Images reach the model as float tensors in [0, 1]; ImageNet normalization is the network's first step, so
filters and spectra can work on the image itself.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import albumentations as A
from albumentations.pytorch import ToTensorV2

from datamodules.base import BaseDataModule, DatasetNotFoundError, ImageRecord, ImageRecordDataset
from datamodules.batch import SplitInfo
from datamodules.image_io import list_images
from datamodules.standins.forensynths import STANDIN_VERSION, write_forensynths_standin

log = logging.getLogger(__name__)

LABEL_DIRS = {"0_real": 0, "1_fake": 1}
GroupBy = Literal["generator", "category", "generator/category"]

CNNDETECTION_HELP = (
    "Get CNNDetection from https://github.com/PeterWang512/CNNDetection (download_trainset.sh, "
    "download_valset.sh, download_testset.sh), unpack it so that <root>/train, <root>/val and <root>/test "
    "exist, and pass --data.init_args.root <folder>; or run on the built-in stand-in with "
    "--data.init_args.synthetic true"
)


class ForenSynthsDataModule(BaseDataModule):
    """Real/fake image detection data in the CNNDetection layout, with Wang et al.'s augmentation.

    Args:
        classes: Training (and validation) categories, e.g. ``[car, cat, chair, horse]`` for the 4-class
            setting; ``null`` uses every category found. On the stand-in, names it lacks fall back to all of
            its categories (logged).
        test_generators: Test generator folders to evaluate (``null``: every folder under ``test/``).
        seen_generators: Generators whose family was seen in training, for the seen/unseen means of the result
            table (``null``: ``[progan]``, or what the stand-in's STANDIN.json records).
        control_groups: Test folders that are no generator but a check of what the detector learned (the
            stand-in's ``blurred_real``: blurred reals vs seen fakes); reported, left out of the means (``null``:
            none, or what the stand-in records).
        group_by: What test results are split by: the generator, the category, or both.
        load_size: Short side images are resized to before cropping (``null`` keeps the stored size); on the
            stand-in, its native size is used instead (the no-op that 256 is on ForenSynths' 256 px images).
        test_resize: Resize test images to ``load_size`` as in training.
        test_crop: Center-crop test images to ``image_size`` (off needs equal-sized images or batch size 1).
        blur_prob: Probability of Gaussian blur in training (Wang's Blur+JPEG(0.5): 0.5).
        blur_sigma: Range of the blur's sigma.
        jpeg_prob: Probability of JPEG re-compression in training.
        jpeg_quality: Range of the JPEG quality.
        flip: Random horizontal flip in training.
        real_only: Read only ``0_real`` folders in train and val (methods trained without generated images,
            e.g. FingerprintNet); test still reads both classes.
        **kwargs: The shared arguments of :class:`~datamodules.base.BaseDataModule` (root, batch_size,
            num_workers, image_size, synthetic, standin_size, bad_files, pin_memory, seed, predict_dir: the
            folder of images ``predict`` needs here).
    """

    layout = "forensynths"
    standin_version = STANDIN_VERSION

    def __init__(
        self,
        classes: list[str] | None = None,
        test_generators: list[str] | None = None,
        seen_generators: list[str] | None = None,
        control_groups: list[str] | None = None,
        group_by: GroupBy = "generator",
        load_size: int | None = 256,
        test_resize: bool = True,
        test_crop: bool = True,
        blur_prob: float = 0.5,
        blur_sigma: tuple[float, float] = (0.0, 3.0),
        jpeg_prob: float = 0.5,
        jpeg_quality: tuple[int, int] = (30, 100),
        flip: bool = True,
        real_only: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("root", "data/cnndetection")
        super().__init__(**kwargs)
        if group_by not in ("generator", "category", "generator/category"):
            raise ValueError(
                f"data.init_args.group_by must be generator, category or generator/category, got {group_by!r}"
            )
        self.classes = list(classes) if classes else None
        self.test_generators = list(test_generators) if test_generators else None
        self.seen_generators = list(seen_generators) if seen_generators else None
        self.control_groups = list(control_groups) if control_groups is not None else None
        self.group_by = group_by
        self.load_size = load_size
        self.test_resize = test_resize
        self.test_crop = test_crop
        self.blur_prob = blur_prob
        self.blur_sigma = tuple(blur_sigma)
        self.jpeg_prob = jpeg_prob
        self.jpeg_quality = tuple(jpeg_quality)
        self.flip = flip
        self.real_only = real_only
        self.datasets: dict[str, ImageRecordDataset] = {}
        self.stage_groups: dict[str, list[str]] = {}

    # ------------------------------------------------------------------------------------------ on disk
    def write_standin(self, out_dir: Path) -> None:
        write_forensynths_standin(out_dir, size=self.standin_size, seed=self.seed)

    def missing_data_message(self) -> str:
        return f"CNNDetection data not found at data.init_args.root={self.root!r}. {CNNDETECTION_HELP}"

    def check_data_present(self) -> None:
        for split in ("train", "val", "test"):
            if (self.data_dir / split).is_dir():
                return
        raise DatasetNotFoundError(self.missing_data_message())

    def _standin_info(self) -> dict[str, Any]:
        marker = self.data_dir / "STANDIN.json"
        return json.loads(marker.read_text()) if self.synthetic and marker.is_file() else {}

    def effective_load_size(self) -> int | None:
        """``load_size``; on the stand-in its native image size (the no-op resize that 256 is on ForenSynths)."""
        if not self.synthetic:
            return self.load_size
        native = self._standin_info().get("image_size")
        if native and self.image_size > native:
            log.warning(
                "image_size %d is larger than the stand-in's %d px images: crops are padded",
                self.image_size,
                native,
            )
        return native

    def training_categories(self) -> list[str]:
        """The categories train/val read: ``classes``, or all of them (see ``classes`` for the stand-in rule)."""
        split_dir = next((self.data_dir / s for s in ("train", "val") if (self.data_dir / s).is_dir()), None)
        if split_dir is None:
            raise DatasetNotFoundError(f"{self.data_dir} holds neither train/ nor val/. {CNNDETECTION_HELP}")
        found = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
        if not self.classes:
            return found
        missing = [c for c in self.classes if c not in found]
        if missing and self.synthetic:
            log.info(
                "stand-in has categories %s; classes %s are not among them, using all of them", found, missing
            )
            return found
        if missing:
            raise DatasetNotFoundError(
                f"data.init_args.classes: {missing} not found under {split_dir} (found: {found})"
            )
        return list(self.classes)

    def effective_seen_generators(self) -> list[str]:
        if self.seen_generators is not None:
            return self.seen_generators
        return self._standin_info().get("seen_generators", ["progan"])

    def effective_control_groups(self) -> list[str]:
        if self.control_groups is not None:
            return self.control_groups
        return self._standin_info().get("control_groups", [])

    # ------------------------------------------------------------------------------------------ records
    def _split_records(self, split: str) -> list[ImageRecord]:
        if not (self.data_dir / split).is_dir():
            raise DatasetNotFoundError(f"{self.data_dir / split} does not exist. {CNNDETECTION_HELP}")
        records: list[ImageRecord] = []
        for category in self.training_categories():
            folder = self.data_dir / split / category
            if self.real_only:
                records += _labeled_records(folder, group=category, require_both=False, labels=("0_real",))
            else:
                records += _labeled_records(folder, group=category, require_both=True)
        if self.real_only:
            log.info("real_only: %s reads 0_real folders only; every 1_fake folder is ignored", split)
            if not records:
                raise DatasetNotFoundError(f"real_only: no 0_real images under {self.data_dir / split}")
        return records

    def _test_records(self) -> list[ImageRecord]:
        test_dir = self.data_dir / "test"
        if not test_dir.is_dir():
            raise DatasetNotFoundError(f"{test_dir} does not exist. {CNNDETECTION_HELP}")
        found = sorted(p.name for p in test_dir.iterdir() if p.is_dir())
        generators = self.test_generators or found
        unknown = [g for g in generators if g not in found]
        if unknown:
            raise DatasetNotFoundError(
                f"data.init_args.test_generators: {unknown} not in {test_dir} (found: {found})"
            )
        records: list[ImageRecord] = []
        for generator in generators:
            for record in _labeled_records(test_dir / generator, group=generator, require_both=False):
                category = _category_of(record.path, test_dir / generator)
                group = {"generator": generator, "category": category}.get(
                    self.group_by, f"{generator}/{category}"
                )
                records.append(ImageRecord(record.path, record.label, group))
        return records

    # ----------------------------------------------------------------------------------------- lightning
    def setup(self, stage: str) -> None:
        if stage == "fit":
            self._add_dataset("train", self._split_records("train"), self.train_transform())
            self._add_dataset("val", self._split_records("val"), self.eval_transform())
        elif stage == "validate":
            self._add_dataset("val", self._split_records("val"), self.eval_transform())
        elif stage == "test":
            self._add_dataset("test", self._test_records(), self.eval_transform())
        elif (
            stage == "predict" and not self.predict_dir
        ):  # the test split, as every layout predicts without one
            self._add_dataset("test", self._test_records(), self.eval_transform())

    def _add_dataset(self, name: str, records: list[ImageRecord], transform: A.Compose) -> None:
        if not records:
            raise DatasetNotFoundError(f"no images found for the {name} split under {self.data_dir}")
        self.datasets[name] = ImageRecordDataset(records, transform, self.bad_files)
        self.stage_groups[name] = sorted({r.group for r in records})
        counts = [sum(r.label == label for r in records) for label in (0, 1)]
        log.info(
            "%s: %d real + %d fake images in %d groups",
            name,
            counts[0],
            counts[1],
            len(self.stage_groups[name]),
        )

    @property
    def num_classes(self) -> int:
        return 2

    def groups_for(self, split: str) -> list[str]:
        """Group names of a split (``train``, ``val``, ``test``, ``predict``) in a fixed, sorted order."""
        return self.stage_groups.get(split, [])

    def split_info(self, split: str) -> SplitInfo:
        """The test split also says which generators training saw and which groups are controls (blurred reals)."""
        info = super().split_info(split)
        if split != "test":
            return info
        seen, controls = self.effective_seen_generators(), self.effective_control_groups()
        return replace(info, seen=tuple(seen), controls=tuple(controls))

    # ---------------------------------------------------------------------------------------- transforms
    def train_transform(self) -> A.Compose:
        steps: list[A.BasicTransform] = []
        load_size = self.effective_load_size()
        if load_size:
            steps.append(A.SmallestMaxSize(max_size=load_size))
        if self.blur_prob > 0:
            steps.append(A.GaussianBlur(blur_limit=0, sigma_limit=self.blur_sigma, p=self.blur_prob))
        if self.jpeg_prob > 0:
            steps.append(A.ImageCompression(quality_range=self.jpeg_quality, p=self.jpeg_prob))
        steps.append(A.RandomCrop(self.image_size, self.image_size, pad_if_needed=True))
        if self.flip:
            steps.append(A.HorizontalFlip(p=0.5))
        return A.Compose([*steps, A.ToFloat(max_value=255.0), ToTensorV2()])

    def eval_transform(self) -> A.Compose:
        steps: list[A.BasicTransform] = []
        load_size = self.effective_load_size()
        if load_size and self.test_resize:
            steps.append(A.SmallestMaxSize(max_size=load_size))
        if self.test_crop:
            steps.append(A.CenterCrop(self.image_size, self.image_size, pad_if_needed=True))
        return A.Compose([*steps, A.ToFloat(max_value=255.0), ToTensorV2()])


def _labeled_records(
    folder: Path, group: str, require_both: bool, labels: tuple[str, ...] = tuple(LABEL_DIRS)
) -> list[ImageRecord]:
    """Every image under ``folder`` inside one of the ``labels`` directories, labeled by that directory."""
    label_dirs = sorted(p for p in folder.rglob("*") if p.is_dir() and p.name in labels)
    if require_both and {p.name for p in label_dirs} != set(LABEL_DIRS):
        raise DatasetNotFoundError(
            f"{folder} must hold both 0_real/ and 1_fake/ (found: {[p.name for p in label_dirs]})"
        )
    records = []
    for directory in label_dirs:
        images = list_images(directory, recursive=False)
        if require_both and not images:  # an empty class would silently train on one label for this group
            raise DatasetNotFoundError(
                f"{directory} holds no images (expected .png/.jpg files of that class)"
            )
        records += [ImageRecord(path, LABEL_DIRS[directory.name], group) for path in images]
    return records


def _category_of(path: Path, generator_dir: Path) -> str:
    """The category folder between the generator and the label folder (``all`` when there is none)."""
    parts = path.relative_to(generator_dir).parts[:-2]
    return "/".join(parts) if parts else "all"
