"""Paired RGB + ToF depth captures for object anti-spoofing (mToFNet, WACV 2022), grouped by display or device.

Layout::

    <root>/<split>/{genuine,spoof}/<display or device>/<capture_id>_rgb.{png,jpg}
    <root>/<split>/{genuine,spoof}/<display or device>/<capture_id>_depth.{png,npy}

with splits ``train``, ``val``, ``test``. Depth is a 16-bit PNG in millimetres or a float ``.npy`` (0 = no
measurement); each capture's depth is clipped to its [1, 99] percentiles and scaled to [0, 1], and resized to the
RGB size when the sizes differ (a phone's ToF sensor is coarser; one warning per dataset). A capture whose
partner file is missing is skipped and counted. Geometric augmentation is applied identically to both
modalities, color jitter to RGB only.

Batches: ``image`` (B, 3, S, S) in [0, 1], ``depth`` (B, 1, S, S) in [0, 1], ``label`` (0 genuine, 1 spoof),
``group`` (the display model for spoofs, the device for genuine captures), ``path`` (the RGB file).
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from datamodules.base import (
    BaseDataModule,
    DatasetNotFoundError,
    skip_or_raise,
)
from datamodules.batch import SplitInfo
from datamodules.depth_io import DEPTH_EXTENSIONS, normalize_depth, read_depth
from datamodules.image_io import BadImageError, read_rgb
from datamodules.seeded_sampling import ReseededTransformMixin, SeededIndex
from datamodules.standins.rgbd import STANDIN_VERSION, write_rgbd_standin

log = logging.getLogger(__name__)
LABELS = {"genuine": 0, "spoof": 1}
RGB_SUFFIXES = (".png", ".jpg", ".jpeg")
MTOF_HELP = (
    "the mToF dataset is not public: put your captures in the layout <root>/<split>/{genuine,spoof}/<display or "
    "device>/<id>_rgb.png + <id>_depth.png (16-bit mm) or .npy, or run on the built-in stand-in with "
    "--data.init_args.synthetic true"
)


@dataclass(frozen=True)
class CaptureRecord:
    rgb: Path
    depth: Path
    label: int
    group: str


def find_captures(split_dir: Path) -> tuple[list[CaptureRecord], list[Path]]:
    """(paired captures, RGB or depth files whose partner is missing) under one split folder."""
    records, unpaired = [], []
    for kind, label in LABELS.items():
        for group_dir in sorted(p for p in (split_dir / kind).glob("*") if p.is_dir()):
            found, lonely = _pairs(group_dir)
            records += [CaptureRecord(rgb, depth, label, group_dir.name) for rgb, depth in found]
            unpaired += lonely
    return records, unpaired


def _pairs(folder: Path) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """(``<id>_rgb.*``, ``<id>_depth.*``) pairs of one folder, and the files whose partner is missing."""
    rgbs = {
        p.name[: -len("_rgb" + p.suffix)]: p
        for p in folder.iterdir()
        if p.suffix.lower() in RGB_SUFFIXES and p.stem.endswith("_rgb")
    }
    depths = {
        p.name[: -len("_depth" + p.suffix)]: p
        for p in folder.iterdir()
        if p.suffix.lower() in DEPTH_EXTENSIONS and p.stem.endswith("_depth")
    }
    pairs = [(rgbs[c], depths[c]) for c in sorted(rgbs.keys() & depths.keys())]
    lonely = [rgbs.get(c) or depths[c] for c in sorted(rgbs.keys() ^ depths.keys())]
    return pairs, lonely


class RGBDDataset(ReseededTransformMixin, Dataset):
    """Reads paired captures; an unreadable one is skipped (``None``) or an error, as ``bad_files`` says."""

    def __init__(self, records: list[CaptureRecord], transform: A.Compose, bad_files: str = "skip") -> None:
        self.records, self.transform, self.bad_files = records, transform, bad_files
        self._warned_resize = False

    def __len__(self) -> int:
        return len(self.records)

    def load(self, record: CaptureRecord) -> tuple[np.ndarray, np.ndarray]:
        """(RGB uint8 (H, W, 3), normalized depth float32 (H, W)) at the RGB's size."""
        rgb = read_rgb(record.rgb)
        depth = normalize_depth(read_depth(record.depth))
        if depth.shape != rgb.shape[:2]:
            if not self._warned_resize:
                warnings.warn(
                    f"{record.depth}: depth {depth.shape[1]}x{depth.shape[0]} differs from the RGB's "
                    f"{rgb.shape[1]}x{rgb.shape[0]}; resizing depth to the RGB size (bilinear; further "
                    "mismatches in this dataset are resized silently)",
                    stacklevel=2,
                )
                self._warned_resize = True
            depth = cv2.resize(depth, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
        return rgb, depth

    def check_first_capture(self) -> None:
        """Load the first capture (warning about a depth/RGB size mismatch now); later mismatches resize silently."""
        try:
            self.load(self.records[0])
        except BadImageError:
            pass  # reported when the loader reaches it
        self._warned_resize = True

    def __getitem__(self, index: int | SeededIndex) -> dict[str, Any] | None:
        record = self.records[self.seeded(index)]
        try:
            rgb, depth = self.load(record)
        except BadImageError as error:
            skip_or_raise(error, self.bad_files, "capture")
            return None
        out = self.transform(image=rgb, depth=depth)
        image = torch.from_numpy(np.ascontiguousarray(out["image"].transpose(2, 0, 1))).float() / 255.0
        return {
            "image": image,
            "depth": torch.from_numpy(np.ascontiguousarray(out["depth"]))[None].float(),
            "label": record.label,
            "group": record.group,
            "path": str(record.rgb),
        }


class RGBDSpoofDataModule(BaseDataModule):
    """RGB + depth anti-spoofing captures; leave-display-out when test displays are absent from train and val.

    Args:
        genuine_only: Drop spoofs from train and val (mToFNet trains and sets its threshold without them).
        flip: Random horizontal flip in training (both modalities).
        scale: Range of the random resized crop's area in training (both modalities); null: resize only.
        color_jitter: Brightness / contrast / saturation jitter strength in training (RGB only); 0: off.
        **kwargs: The shared arguments of :class:`~datamodules.base.BaseDataModule` (root, batch_size,
            num_workers, image_size, synthetic, standin_size, bad_files, pin_memory, seed).
    """

    layout = "rgbd_spoof"
    standin_version = STANDIN_VERSION

    def __init__(
        self,
        genuine_only: bool = False,
        flip: bool = True,
        scale: tuple[float, float] | None = (0.6, 1.0),
        color_jitter: float = 0.2,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("root", "data/mtof")
        super().__init__(**kwargs)
        self.genuine_only = genuine_only
        self.flip = flip
        self.scale = tuple(scale) if scale else None
        self.color_jitter = color_jitter
        self.datasets: dict[str, RGBDDataset] = {}
        self._groups: dict[str, list[str]] = {}

    # ------------------------------------------------------------------------------------------ on disk
    def write_standin(self, out_dir: Path) -> None:
        write_rgbd_standin(out_dir, size=self.standin_size, seed=self.seed)

    def missing_data_message(self) -> str:
        return f"no RGB-D captures under data.init_args.root={self.root!r}: {MTOF_HELP}"

    def check_data_present(self) -> None:
        missing = [s for s in ("train", "val", "test") if not (self.data_dir / s).is_dir()]
        if missing:
            raise DatasetNotFoundError(f"{self.data_dir} has no {'/'.join(missing)} folder: {MTOF_HELP}")

    def _records(self, split: str) -> list[CaptureRecord]:
        folder = self.data_dir / split
        if not folder.is_dir():
            raise DatasetNotFoundError(f"{folder} does not exist: {MTOF_HELP}")
        records, unpaired = find_captures(folder)
        if unpaired:
            self.skipped_files[f"{split} (no partner)"] += len(unpaired)
            log.warning(
                "%s: %d captures without their RGB or depth partner skipped (first: %s)",
                folder,
                len(unpaired),
                unpaired[0],
            )
        if not records:
            raise DatasetNotFoundError(
                f"{folder}: no paired *_rgb / *_depth captures under genuine/ or spoof/"
            )
        if self.genuine_only and split in ("train", "val"):
            records = [r for r in records if r.label == 0]
        return records

    # ----------------------------------------------------------------------------------------- lightning
    def setup(self, stage: str) -> None:
        if self.datasets or self.predicting_a_folder(stage):
            return
        for split in ("train", "val", "test"):
            records = self._records(split)
            transform = self.train_transform() if split == "train" else self.eval_transform()
            self.datasets[split] = RGBDDataset(records, transform, self.bad_files)
            self.datasets[split].check_first_capture()  # warns here, once, not in every loader worker
            self._groups[split] = sorted({r.group for r in records})
        counts = {
            s: (sum(r.label == 0 for r in d.records), sum(r.label == 1 for r in d.records))
            for s, d in self.datasets.items()
        }
        log.info(
            "RGB-D captures (genuine, spoof): %s; test displays unseen in training: %s",
            counts,
            self.unseen_displays(),
        )

    @property
    def num_classes(self) -> int:
        return 2

    def groups_for(self, split: str) -> list[str]:
        if not self._groups:
            self.setup("fit")
        return list(self._groups.get(split, []))

    def displays(self, split: str) -> list[str]:
        """Display models with spoofs in ``split``."""
        if not self.datasets:
            self.setup("fit")
        return sorted({r.group for r in self.datasets[split].records if r.label == 1})

    def split_info(self, split: str) -> SplitInfo:
        """The test split also names its unseen displays (no spoof from them in train or val)."""
        info = super().split_info(split)
        return replace(info, unseen=tuple(self.unseen_displays())) if split == "test" else info

    def unseen_displays(self) -> list[str]:
        """Test displays with no spoof in train or val (read from the folders, so it holds for the real data;
        with ``genuine_only`` the stand-in's STANDIN.json says which displays training was meant to see)."""
        seen: set[str] = set()
        marker = self.data_dir / "STANDIN.json"
        if self.genuine_only and marker.is_file():
            seen = set(json.loads(marker.read_text()).get("seen_displays", []))
        else:
            for split in ("train", "val"):
                seen |= {r.group for r in self.datasets[split].records if r.label == 1}
        return [d for d in self.displays("test") if d not in seen]

    # ---------------------------------------------------------------------------------------- transforms
    def train_transform(self) -> A.Compose:
        size = self.image_size
        crop = (
            A.RandomResizedCrop((size, size), scale=self.scale, ratio=(0.9, 1.1))
            if self.scale
            else A.Resize(size, size)
        )
        steps = [crop]
        if self.flip:
            steps.append(A.HorizontalFlip(p=0.5))
        if self.color_jitter:
            j = self.color_jitter
            steps.append(A.ColorJitter(brightness=j, contrast=j, saturation=j, hue=0.0, p=0.8))
        return A.Compose(steps, additional_targets={"depth": "mask"})

    def predict_dataset(self, folder: Path) -> RGBDDataset:
        """Every ``<id>_rgb.*`` with its ``<id>_depth.*`` under ``folder`` (any depth of sub-folders, the same naming
        rule as training), label -1, the sub-folder as the group; files without their partner are named."""
        records, unpaired = [], []
        for group_dir in sorted({p.parent for p in folder.rglob("*") if p.is_file()}):
            found, lonely = _pairs(group_dir)
            records += [CaptureRecord(rgb, depth, -1, group_dir.name) for rgb, depth in found]
            unpaired += lonely
        if unpaired:
            shown = ", ".join(str(p) for p in unpaired[:5]) + (" ..." if len(unpaired) > 5 else "")
            log.warning(
                "predict_dir: %d files without their RGB or depth partner skipped: %s", len(unpaired), shown
            )
        if not records:
            raise DatasetNotFoundError(
                f"data.init_args.predict_dir={str(folder)!r} holds no <id>_rgb.png + <id>_depth.png pairs"
            )
        return RGBDDataset(records, self.eval_transform(), self.bad_files)

    def eval_transform(self) -> A.Compose:
        return A.Compose([A.Resize(self.image_size, self.image_size)], additional_targets={"depth": "mask"})
