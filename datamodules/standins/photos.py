"""Real photographic content for stand-in datasets, from the sample images scikit-image ships (no download).

Every stand-in draws its pixels from here, so the content a model sees is real; only the phenomenon a method
exploits (an up-sampling fingerprint, a defect, a moiré pattern) is synthesized on top.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# category name -> scikit-image loader names (RGB photos; grayscale ones are repeated to 3 channels)
PHOTO_CATEGORIES: dict[str, tuple[str, ...]] = {
    "cat": ("chelsea",),
    "person": ("astronaut",),
    "motorcycle": ("motorcycle_left", "motorcycle_right"),
    "rocket": ("rocket",),
    "coffee": ("coffee",),
    "tissue": ("immunohistochemistry",),
    "galaxy": ("hubble_deep_field",),
    "street": ("camera",),
}


@cache
def load_photo(name: str) -> np.ndarray:
    """One scikit-image sample photo as (H, W, 3) uint8."""
    from skimage import data

    if name in ("motorcycle_left", "motorcycle_right"):
        left, right, _ = data.stereo_motorcycle()
        image = left if name == "motorcycle_left" else right
    else:
        image = getattr(data, name)()
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


def random_crops(
    photos: tuple[np.ndarray, ...],
    count: int,
    size: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = (1.0, 3.0),
) -> np.ndarray:
    """``count`` square crops of side ``size`` as (N, size, size, 3) uint8.

    Each crop covers ``size * s`` source pixels with ``s`` drawn log-uniformly from ``scale`` and is
    down-scaled with area averaging (anti-aliased), so crops look like natural photos at their own resolution
    rather than like up-sampled ones.
    """
    crops = np.empty((count, size, size, 3), dtype=np.uint8)
    for i in range(count):
        photo = photos[rng.integers(len(photos))]
        height, width = photo.shape[:2]
        s = float(np.exp(rng.uniform(np.log(scale[0]), np.log(scale[1]))))
        side = min(int(round(size * s)), height, width)
        top = int(rng.integers(0, height - side + 1))
        left = int(rng.integers(0, width - side + 1))
        patch = Image.fromarray(photo[top : top + side, left : left + side])
        if side != size:
            patch = patch.resize((size, size), Image.Resampling.BOX)
        crops[i] = np.asarray(patch)
        if rng.random() < 0.5:
            crops[i] = crops[i, :, ::-1]
    return crops


def save_png(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, optimize=False, compress_level=1)


@contextmanager
def standin_folder(out_dir: Path, description: dict[str, Any]) -> Iterator[Path]:
    """Write a stand-in into a temporary sibling folder and move it into place only when complete.

    A crash half-way leaves no half-written dataset behind, and ``STANDIN.json`` (what was built, with which
    seed) marks a finished one, so it is written once and reused.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        yield tmp
        (tmp / "STANDIN.json").write_text(json.dumps(description, indent=2) + "\n")
        if out_dir.exists():  # another process finished first: keep its copy
            shutil.rmtree(tmp)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
