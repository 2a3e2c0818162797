"""The ForenSynths / CNNDetection stand-in: real photo crops vs fakes from up-sampling families, in the real layout.

Layout written (exactly CNNDetection's)::

    train/<category>/{0_real,1_fake}/*.png      fakes from the seen family only
    val/<category>/{0_real,1_fake}/*.png        seen family
    test/<family>/<category>/{0_real,1_fake}/*.png   the seen family and five unseen ones (one of them an
                                                     "anti-artifact" family with smoothed replicas), on the
                                                     training categories and two categories never trained on
    test/blurred_real/<category>/{0_real,1_fake}/*.png   a control, not a generator family: Gaussian-blurred
                                                     reals against the seen family's fakes. A detector that
                                                     learned "smooth = fake" instead of up-sampling traces
                                                     calls the blurred reals fake and loses accuracy here

The seen family plays ProGAN's part. Measured with a plain CNN on raw pixels (README, "Stand-in data"), the
seen family is near 100 % while several unseen families sit at chance, and a log-spectrum input keeps its
ranking on them: the stand-in separates methods the way the real benchmark does.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from datamodules.standins.photos import PHOTO_CATEGORIES, load_photo, random_crops, save_png, standin_folder
from datamodules.standins.upsampling import UpsamplingFamily, fake_images

SEEN_FAMILY = "transconv"
FAMILIES: tuple[UpsamplingFamily, ...] = (
    UpsamplingFamily(SEEN_FAMILY, "transconv", stages=1, seed=11),
    UpsamplingFamily("nearest_conv", "nearest_conv", stages=1, seed=12),
    UpsamplingFamily("bilinear_conv", "bilinear_conv", stages=2, seed=13),
    UpsamplingFamily("pixelshuffle", "pixelshuffle", stages=1, seed=14),
    UpsamplingFamily("transconv_2x", "transconv", stages=2, seed=15, strength=0.08),
    # the harder unseen case FingerprintNet's benchmark targets: replicas smoothed away after up-sampling
    UpsamplingFamily("anti_artifact", "transconv", stages=1, seed=16, smoothing=0.95),
)
BLURRED_REAL = "blurred_real"
CONTROL_GROUPS = (BLURRED_REAL,)  # test groups that are not generator families: left out of the means
BLUR_SIGMA = (1.0, 2.0)  # pixels, drawn per blurred real (64 px crops)
STANDIN_VERSION = 3  # bump when what is written changes; older copies on disk are rebuilt
TRAIN_CATEGORIES = ("cat", "person", "motorcycle", "rocket")
UNSEEN_CATEGORIES = ("coffee", "tissue")

# images per (category, class) in train and val, and per (family, category, class) in test
PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"image_size": 32, "train": 6, "val": 3, "test": 3},
    "small": {"image_size": 64, "train": 250, "val": 50, "test": 40},
}


def write_forensynths_standin(out_dir: str | Path, size: str = "small", seed: int = 0) -> Path:
    """Write the stand-in into ``out_dir`` (atomically) and return it. Deterministic in ``size`` and ``seed``."""
    if size not in PRESETS:
        raise ValueError(f"stand-in size must be one of {sorted(PRESETS)}, got {size!r}")
    preset = PRESETS[size]
    families = {family.name: family for family in FAMILIES}
    description = {
        "layout": "forensynths",
        "version": STANDIN_VERSION,
        "size": size,
        "seed": seed,
        "image_size": preset["image_size"],
        "seen_generators": [SEEN_FAMILY],
        "control_groups": list(CONTROL_GROUPS),
        "train_categories": list(TRAIN_CATEGORIES),
        "unseen_categories": list(UNSEEN_CATEGORIES),
        "families": {
            f.name: {"operator": f.operator, "stages": f.stages, "smoothing": f.smoothing} for f in FAMILIES
        },
        "photos": {c: list(PHOTO_CATEGORIES[c]) for c in TRAIN_CATEGORIES + UNSEEN_CATEGORIES},
    }
    with standin_folder(Path(out_dir), description) as tmp:
        for split in ("train", "val"):
            for category in TRAIN_CATEGORIES:
                _write_pair(
                    tmp / split / category,
                    category,
                    families[SEEN_FAMILY],
                    preset[split],
                    preset,
                    seed,
                    split,
                )
        for family in FAMILIES:
            for category in TRAIN_CATEGORIES + UNSEEN_CATEGORIES:
                folder = tmp / "test" / family.name / category
                _write_pair(folder, category, family, preset["test"], preset, seed, f"test/{family.name}")
        for category in TRAIN_CATEGORIES + UNSEEN_CATEGORIES:
            folder = tmp / "test" / BLURRED_REAL / category
            tag = f"test/{BLURRED_REAL}"
            _write_pair(folder, category, families[SEEN_FAMILY], preset["test"], preset, seed, tag, blur=True)
    return Path(out_dir)


def _write_pair(
    folder: Path,
    category: str,
    family: UpsamplingFamily,
    count: int,
    preset: dict[str, int],
    seed: int,
    tag: str,
    blur: bool = False,
) -> None:
    """``count`` reals and ``count`` fakes of one category; fakes are made from other crops than the reals.
    ``blur`` blurs the reals (the control group)."""
    rng = np.random.default_rng([seed, zlib.crc32(f"{tag}/{category}".encode())])
    photos = tuple(load_photo(name) for name in PHOTO_CATEGORIES[category])
    reals = random_crops(photos, count, preset["image_size"], rng)
    if blur:
        reals = np.stack([gaussian_blur(image, rng.uniform(*BLUR_SIGMA)) for image in reals])
    fakes = fake_images(family, random_crops(photos, count, preset["image_size"], rng))
    for label_dir, images in (("0_real", reals), ("1_fake", fakes)):
        for i, image in enumerate(images):
            save_png(image, folder / label_dir / f"{category}_{i:05d}.png")


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """A (H, W, 3) uint8 image blurred per channel with a Gaussian of ``sigma`` pixels (edges reflected)."""
    from scipy.ndimage import gaussian_filter

    blurred = gaussian_filter(image.astype(np.float32), sigma=(sigma, sigma, 0.0), mode="reflect")
    return np.clip(np.round(blurred), 0, 255).astype(np.uint8)
