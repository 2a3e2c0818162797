"""Images per second of our training input pipeline vs torchvision ``ImageFolder`` + ``transforms.v2`` doing the
same work (decode PNG, resize the short side, random crop, horizontal flip, float tensor in [0, 1]) over the
same files, one after the other in one process. Ratio > 1: ours is faster."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.transforms import v2

from datamodules.batch import collate_skipping_bad
from datamodules.forensynths import ForenSynthsDataModule


def images_per_second(loader: DataLoader, epochs: int = 2) -> float:
    """Best epoch's throughput (the first may pay for file-system caches)."""
    best = 0.0
    for _ in range(epochs):
        start, count = time.perf_counter(), 0
        for batch in loader:
            images = batch["image"] if isinstance(batch, dict) else batch[0]
            count += len(images)
        best = max(best, count / (time.perf_counter() - start))
    return best


def compare(
    root: Path, image_size: int, load_size: int, batch_size: int, workers: int, standin_size: str = "small"
) -> tuple[float, float, int]:
    """(ours images/s, torchvision images/s, images) on the stand-in's training split."""
    # read the stand-in's files as real data, so load_size is honoured (on the stand-in it is the native size)
    standin = ForenSynthsDataModule(root=str(root), synthetic=True, standin_size=standin_size)
    standin.prepare_data()
    categories = sorted(p.name for p in (standin.data_dir / "train").iterdir())
    data = ForenSynthsDataModule(
        root=str(standin.data_dir),
        classes=categories,
        image_size=image_size,
        load_size=load_size,
        blur_prob=0.0,
        jpeg_prob=0.0,
        batch_size=batch_size,
        num_workers=workers,
    )
    data.setup("fit")
    ours = DataLoader(
        data.datasets["train"],
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        collate_fn=collate_skipping_bad,
    )
    reference_transform = v2.Compose(
        [
            v2.PILToTensor(),
            v2.Resize(load_size, antialias=True),
            v2.RandomCrop(image_size, pad_if_needed=True),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )
    folder = data.data_dir / "train"
    # the same files: ImageFolder takes the categories as classes and finds 0_real/ and 1_fake/ images below them
    images = datasets.ImageFolder(str(folder), transform=reference_transform)
    assert len(images) == len(data.datasets["train"]), (len(images), len(data.datasets["train"]))
    reference = DataLoader(images, batch_size=batch_size, shuffle=True, num_workers=workers)
    return images_per_second(ours), images_per_second(reference), len(images)
