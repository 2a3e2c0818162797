"""The CIFAR stand-in: scikit-learn's handwritten digits (real scans), written in CIFAR's own pickle format.

``cifar-10-batches-py/`` holds 10 classes (the digit); ``cifar-100-python/`` holds 100 classes (digit x one of
ten color palettes), so both CIFAR configs run unchanged. Each 8x8 scan becomes a 32x32 color image: up-sampled,
painted with a palette (foreground and background color), shifted by a few pixels and lightly noised, ``variants``
times with different draws. Train and test come from disjoint scans. Deterministic in ``seed``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from datamodules.standins.digits import DIGITS_SOURCE, digit_splits
from datamodules.standins.photos import standin_folder

PRESETS = {"tiny": {"variants": 1}, "small": {"variants": 4}}
TEST_SHARE = 0.2
# ten (foreground, background) palettes; CIFAR-100's fine label is digit * 10 + palette
PALETTES = [
    ((250, 250, 250), (10, 10, 10)),
    ((240, 60, 50), (20, 30, 60)),
    ((60, 200, 80), (40, 20, 30)),
    ((70, 110, 240), (230, 220, 200)),
    ((250, 210, 60), (60, 40, 90)),
    ((200, 80, 220), (20, 60, 40)),
    ((40, 40, 40), (220, 220, 230)),
    ((250, 140, 40), (30, 70, 90)),
    ((90, 220, 220), (90, 30, 30)),
    ((160, 120, 80), (200, 240, 200)),
]


def render(scan: np.ndarray, palette: int, rng: np.random.Generator) -> np.ndarray:
    """One 8x8 scan (0..16) as a 32x32x3 uint8 image in ``palette``, shifted and noised."""
    ink = Image.fromarray((scan / 16.0 * 255).astype(np.uint8)).resize((24, 24), Image.Resampling.BILINEAR)
    canvas = np.zeros((32, 32), dtype=np.float32)
    top, left = rng.integers(0, 9, size=2)
    canvas[top : top + 24, left : left + 24] = np.asarray(ink, dtype=np.float32) / 255.0
    foreground, background = (np.array(c, dtype=np.float32) for c in PALETTES[palette])
    image = canvas[..., None] * foreground + (1 - canvas[..., None]) * background
    image += rng.normal(0, 8, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_cifar_standin(out_dir: str | Path, size: str = "small", seed: int = 0) -> Path:
    """Write both CIFAR layouts into ``out_dir`` (atomically) and return it."""
    if size not in PRESETS:
        raise ValueError(f"stand-in size must be one of {sorted(PRESETS)}, got {size!r}")
    rng = np.random.default_rng(seed)
    digits = digit_splits(rng, TEST_SHARE)
    scans, labels = digits.scans, digits.labels
    splits = {"train": digits.train, "test": digits.test}
    variants = PRESETS[size]["variants"]
    description = {
        "layout": "cifar",
        "version": STANDIN_VERSION,
        "size": size,
        "seed": seed,
        "variants": variants,
        "source": DIGITS_SOURCE,
    }
    with standin_folder(Path(out_dir), description) as tmp:
        arrays: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for split, indices in splits.items():
            images, digit_labels, palettes = [], [], []
            for index in indices:
                for _ in range(variants):
                    palette = int(rng.integers(len(PALETTES)))
                    images.append(render(scans[index], palette, rng))
                    digit_labels.append(labels[index])
                    palettes.append(palette)
            arrays[split] = (np.stack(images), np.array(digit_labels), np.array(palettes))
        _write_cifar10(tmp / "cifar-10-batches-py", arrays)
        _write_cifar100(tmp / "cifar-100-python", arrays)
    return Path(out_dir)


STANDIN_VERSION = 1


def _flat(images: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) -> (N, 3072) in CIFAR's order: the red plane, then green, then blue."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def _dump(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        pickle.dump(content, handle, protocol=2)


def _write_cifar10(folder: Path, arrays: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
    images, labels, _ = arrays["train"]
    for part, chunk in enumerate(np.array_split(np.arange(len(images)), 5), start=1):
        _dump(folder / f"data_batch_{part}", {"data": _flat(images[chunk]), "labels": labels[chunk].tolist()})
    images, labels, _ = arrays["test"]
    _dump(folder / "test_batch", {"data": _flat(images), "labels": labels.tolist()})
    _dump(folder / "batches.meta", {"label_names": [str(d) for d in range(10)], "num_cases_per_batch": 0})


def _write_cifar100(folder: Path, arrays: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
    for split in ("train", "test"):
        images, labels, palettes = arrays[split]
        fine = (labels * 10 + palettes).tolist()
        _dump(folder / split, {"data": _flat(images), "fine_labels": fine, "coarse_labels": labels.tolist()})
    names = [f"digit{d}_palette{p}" for d in range(10) for p in range(10)]
    _dump(folder / "meta", {"fine_label_names": names, "coarse_label_names": [str(d) for d in range(10)]})
