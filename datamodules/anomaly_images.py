"""The files of an anomaly-detection layout and the dataset that reads them: records (image, label, defect type,
masks), where each layout keeps its masks, the union of a record's masks, and the image dataset every split uses."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset

from datamodules.base import DatasetNotFoundError, skip_or_raise
from datamodules.image_io import BadImageError, list_images, read_rgb
from datamodules.normal_balance import epoch_order
from datamodules.seeded_sampling import ReseededTransformMixin, SeededIndex

NORMAL = {"mvtec_ad": "good", "mvtec_loco": "good", "btad": "ok"}
WHERE_TO_GET = {
    "mvtec_ad": "MVTec AD: https://www.mvtec.com/company/research/datasets/mvtec-ad (downloaded automatically "
    "when online with data.init_args.download: true)",
    "mvtec_loco": "MVTec LOCO AD: https://www.mvtec.com/company/research/datasets/mvtec-loco",
    "btad": "BTAD: https://github.com/pankajmishra000/VT-ADL (unpack so that <root>/01/train/ok exists)",
}


@dataclass(frozen=True)
class AnomalyRecord:
    """One image: label 0 normal / 1 anomalous, its defect type, and the mask files (none for normal images)."""

    path: Path
    label: int
    group: str
    masks: tuple[Path, ...] = ()
    augmented: bool = False  # a classically augmented copy of a real shot (``augmented_normals``)
    real: bool = True  # a real image of the dataset, not one added from ``extra_normal_dir`` or augmented


def find_masks(category_dir: Path, dataset: str, defect: str, image: Path) -> tuple[Path, ...]:
    """The ground-truth files of one anomalous image in its layout; raises naming what is missing."""
    folder = category_dir / "ground_truth" / defect
    if not folder.is_dir():
        raise DatasetNotFoundError(
            f"{folder} does not exist: every defect type under test/ needs its ground_truth/{defect} folder"
        )
    if dataset == "mvtec_loco":
        masks = tuple(list_images(folder / image.stem, recursive=False))
    elif dataset == "btad":
        masks = tuple(p for p in list_images(folder, recursive=False) if p.stem == image.stem)
    else:
        masks = tuple(p for p in (folder / f"{image.stem}_mask.png",) if p.is_file())
    if not masks:
        expected = {
            "mvtec_ad": f"{image.stem}_mask.png",
            "mvtec_loco": f"{image.stem}/000.png",
            "btad": f"{image.stem}.png",
        }[dataset]
        raise DatasetNotFoundError(f"{image}: no ground-truth mask (expected {folder / expected})")
    return masks


def find_records(category_dir: Path, dataset: str, split: str) -> list[AnomalyRecord]:
    """Every image of ``split`` (``train``, ``validation`` or ``test``) of one category, defects with masks."""
    normal = NORMAL[dataset]
    split_dir = category_dir / split
    if not split_dir.is_dir():
        raise DatasetNotFoundError(f"{split_dir} does not exist ({WHERE_TO_GET[dataset]})")
    records = []
    for group_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        for image in list_images(group_dir, recursive=False):
            if group_dir.name == normal:
                records.append(AnomalyRecord(image, 0, normal))
            elif split == "test":
                masks = find_masks(category_dir, dataset, group_dir.name, image)
                records.append(AnomalyRecord(image, 1, group_dir.name, masks))
    if not records:
        raise DatasetNotFoundError(f"{split_dir}: no images")
    return records


def read_mask(paths: tuple[Path, ...], shape: tuple[int, int]) -> np.ndarray:
    """The union of the mask files (any non-zero pixel is anomalous) as (H, W) uint8 in {0, 1}."""
    mask = np.zeros(shape, np.uint8)
    for path in paths:
        region = read_rgb(path).max(axis=2) > 0
        if region.shape != shape:
            raise BadImageError(
                f"{path}: mask is {region.shape[1]}x{region.shape[0]}, its image {shape[1]}x{shape[0]}"
            )
        mask |= region
    return mask


class AnomalyImageDataset(ReseededTransformMixin, Dataset):
    """Image + mask per record; an unreadable image or mask is skipped (``None``) or an error (``bad_files``).
    ``control``: the classical augmentation applied (before ``transform``) to augmented copies of the shots."""

    def __init__(
        self,
        records: list[AnomalyRecord],
        transform: A.Compose,
        bad_files: str = "skip",
        length: int | None = None,
        real_fraction: float | None = None,
        control: A.Compose | None = None,
    ) -> None:
        self.records, self.transform, self.bad_files, self.control = records, transform, bad_files, control
        self.extra_transforms = (control,) if control is not None else ()
        self.order = epoch_order(records, length or 0, real_fraction)  # cycles a few-shot set
        self.length = len(self.order)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int | SeededIndex) -> dict[str, Any] | None:
        index = self.seeded(index)
        if not 0 <= index < self.length:
            raise IndexError(index)  # ends plain iteration (``for sample in dataset``) despite the cycling
        record = self.records[self.order[index]]
        try:
            image = read_rgb(record.path)
            mask = read_mask(record.masks, image.shape[:2])
        except BadImageError as error:
            skip_or_raise(error, self.bad_files, "image")
            return None
        if record.augmented and self.control is not None:
            image = self.control(image=image)["image"]
        out = self.transform(image=image, mask=mask)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(out["image"].transpose(2, 0, 1))).float() / 255.0,
            "mask": torch.from_numpy(np.ascontiguousarray(out["mask"]))[None].float(),
            "label": record.label,
            "group": record.group,
            "path": str(record.path),
        }
