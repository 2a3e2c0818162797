"""The MNIST-family stand-in: scikit-learn's handwritten digits (real scans) as 28 px gray IDX files.

For tests and machines without the real files (the real Fashion-MNIST is one ``apt-get install
dataset-fashion-mnist`` away, and ``make install`` does it). Each 8x8 scan becomes a 20x20 digit in a 28x28 frame,
as MNIST centers its digits, shifted by a few pixels; ``variants`` draws per scan. Train and test come from
disjoint scans. The same files serve every ``dataset`` (fashion_mnist, mnist, kmnist): the class names differ,
the pictures are digits. Deterministic in ``seed``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from datamodules.idx_files import write_idx
from datamodules.standins.digits import DIGITS_SOURCE, digit_splits
from datamodules.standins.photos import standin_folder

STANDIN_VERSION = 1
PRESETS = {"tiny": {"variants": 1, "scans": 200}, "small": {"variants": 2, "scans": None}}
TEST_SHARE = 0.2


def render(scan: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One 8x8 scan (0..16) as a 28x28 uint8 image: white ink on black, shifted up to 3 px from the center."""
    ink = Image.fromarray((scan / 16.0 * 255).astype(np.uint8)).resize((20, 20), Image.Resampling.BILINEAR)
    canvas = np.zeros((28, 28), dtype=np.uint8)
    top, left = 4 + rng.integers(-3, 4, size=2)
    canvas[top : top + 20, left : left + 20] = np.asarray(ink)
    return canvas


def write_mnist_standin(out_dir: str | Path, size: str = "small", seed: int = 0) -> Path:
    """Write the four IDX files (gzipped, as published) into ``out_dir`` (atomically) and return it."""
    if size not in PRESETS:
        raise ValueError(f"stand-in size must be one of {sorted(PRESETS)}, got {size!r}")
    rng = np.random.default_rng(seed)
    digits = digit_splits(rng, TEST_SHARE, PRESETS[size]["scans"])
    variants = PRESETS[size]["variants"]
    description = {
        "layout": "mnist",
        "version": STANDIN_VERSION,
        "size": size,
        "seed": seed,
        "variants": variants,
        "source": DIGITS_SOURCE,
    }
    with standin_folder(Path(out_dir), description) as tmp:
        for prefix, indices in (("train", digits.train), ("t10k", digits.test)):
            images = [render(digits.scans[i], rng) for i in indices for _ in range(variants)]
            labels = np.repeat(digits.labels[indices], variants).astype(np.uint8)
            write_idx(tmp / f"{prefix}-images-idx3-ubyte.gz", np.stack(images))
            write_idx(tmp / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return Path(out_dir)
