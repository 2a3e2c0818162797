"""MVTec-AD-layout stand-in: textures and objects from scikit-image's sample photos, synthetic defects, exact masks.

Normal images vary the way MVTec's do: a texture category is random crops of one real texture photo (brick,
gravel), rotated by multiples of 90 degrees and flipped; an object category is one real photo (the coffee cup, the
coins) under small random pose, scale and lighting changes. Test defects are drawn on unseen normal samples:

* ``scratch``: a thin curved stroke, brighter or darker than the surface under it by a few tens of levels;
* ``hole``: a shallow elliptical pit, darker towards its center;
* ``stain``: a soft translucent blob tinted near the surface's own color (the mask is where it covers at least
  half of its peak);
* ``contamination``: a Perlin-noise region filled with a foreign real texture recolored to the surface's mean
  and spread (DRAEM's construction, made texture-consistent).

The defects are small and of low contrast (version 3): with frozen ImageNet features, a one-shot
nearest-neighbour score must still leave room (``scripts/check_standin.py --layout mvtec --headroom lite0``);
the version 2 defects (saturated strokes, dark pits, strong stains) were ranked almost perfectly from one shot.

Masks (``ground_truth/<defect>/<stem>_mask.png``, 0 / 255) are exactly the pixels the defect changed (for the
stain, changed by at least half its strength). Deterministic from the seed.

Beside the categories, ``photos`` (``train/good`` and ``test/good`` only, no defects) holds crops of the other
scikit-image photos (a cat, a person, a motorcycle, a rocket, tissue, galaxies, a street), none of which any
category is made from: what a generator prior for text-guided generation learns from before it meets a category
(``configs/tgi_ad_prior.yaml``), so the prior has seen no category's test images.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from datamodules.standins.photos import PHOTO_CATEGORIES, load_photo, random_crops, save_png, standin_folder

STANDIN_VERSION = 3  # 2: the photos folder; 3: subtler defects (headroom above ImageNet features)
# category -> (kind, scikit-image photo)
CATEGORIES: dict[str, tuple[str, str]] = {
    "brick": ("texture", "brick"),
    "gravel": ("texture", "gravel"),
    "coffee": ("object", "coffee"),
    "coins": ("object", "coins"),
}
DEFECTS = ("scratch", "hole", "stain", "contamination")
SIZES = {  # categories, side, train good, test good, test images per defect
    "tiny": (("brick", "coffee"), 64, 6, 2, 1),
    "small": (tuple(CATEGORIES), 128, 40, 10, 5),
}
PRIOR_CATEGORY = "photos"
PRIOR_SIZES = {"tiny": (8, 2), "small": (400, 16)}  # train, test crops of the photos folder


def prior_photos() -> tuple[np.ndarray, ...]:
    """The scikit-image photos no category uses (every category's photo is left out)."""
    used = {photo for _, photo in CATEGORIES.values()}
    return tuple(load_photo(n) for names in PHOTO_CATEGORIES.values() for n in names if n not in used)


def normal_sample(category: str, side: int, rng: np.random.Generator) -> np.ndarray:
    """One defect-free (side, side, 3) uint8 image of ``category``."""
    kind, photo_name = CATEGORIES[category]
    photo = load_photo(photo_name)
    if kind == "texture":
        crop = int(rng.integers(int(0.4 * photo.shape[0]), int(0.5 * photo.shape[0]) + 1))
        top = int(rng.integers(0, photo.shape[0] - crop + 1))
        left = int(rng.integers(0, photo.shape[1] - crop + 1))
        image = cv2.resize(
            photo[top : top + crop, left : left + crop], (side, side), interpolation=cv2.INTER_AREA
        )
        if (
            rng.random() < 0.5
        ):  # flipped, never turned: an inspection camera sees a texture in one orientation
            image = image[::-1]
        if rng.random() < 0.5:
            image = image[:, ::-1]
    else:
        height, width = photo.shape[:2]
        square = min(height, width)
        center = (
            width / 2 + rng.uniform(-0.02, 0.02) * square,
            height / 2 + rng.uniform(-0.02, 0.02) * square,
        )
        matrix = cv2.getRotationMatrix2D(center, rng.uniform(-4, 4), side / square * rng.uniform(0.97, 1.03))
        matrix[:, 2] += np.array([side / 2, side / 2]) - np.array(center)
        image = cv2.warpAffine(
            photo, matrix, (side, side), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT
        )
    gain = rng.uniform(0.93, 1.07)
    noisy = image.astype(np.float32) * gain + rng.normal(0.0, 2.0, image.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _center(side: int, rng: np.random.Generator) -> tuple[float, float]:
    return tuple(rng.uniform(0.25 * side, 0.75 * side, size=2))  # on the object, away from the border


def scratch(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    side = image.shape[0]
    cx, cy = _center(side, rng)
    angle, length = rng.uniform(0, np.pi), rng.uniform(0.15, 0.3) * side
    t = np.linspace(-0.5, 0.5, 24)
    bend = rng.uniform(-0.15, 0.15) * length
    xs = cx + t * length * np.cos(angle) - bend * (1 - 4 * t**2) * np.sin(angle)
    ys = cy + t * length * np.sin(angle) + bend * (1 - 4 * t**2) * np.cos(angle)
    points = np.stack([xs, ys], axis=1).round().astype(np.int32)[None]
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.polylines(mask, points, False, 255, thickness=max(1, side // 96))
    sign = 1.0 if image.mean() < 128 else -1.0
    out = image.astype(np.float32)
    out[mask > 0] += sign * rng.uniform(35, 60)
    return np.clip(out, 0, 255).astype(np.uint8), mask


def hole(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    side = image.shape[0]
    cx, cy = _center(side, rng)
    axes = rng.uniform(0.035, 0.07, size=2) * side
    yy, xx = np.mgrid[:side, :side]
    angle = rng.uniform(0, np.pi)
    u = ((xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)) / axes[0]
    v = (-(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)) / axes[1]
    radius = np.sqrt(u**2 + v**2)
    mask = radius <= 1.0
    shade = (0.45 + 0.4 * np.clip(radius, 0, 1) ** 2)[..., None]  # darker center, rim close to the surface
    out = image.astype(np.float32)
    out[mask] = (out * shade)[mask]
    return out.astype(np.uint8), mask.astype(np.uint8) * 255


def stain(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    side = image.shape[0]
    cx, cy = _center(side, rng)
    yy, xx = np.mgrid[:side, :side]
    alpha = np.zeros((side, side), np.float32)
    for _ in range(3):
        ox, oy = rng.normal(0, 0.03 * side, 2)
        sigma = rng.uniform(0.03, 0.06) * side
        alpha = np.maximum(alpha, np.exp(-((xx - cx - ox) ** 2 + (yy - cy - oy) ** 2) / (2 * sigma**2)))
    alpha = np.clip(1.6 * alpha - 0.3, 0, 1) * rng.uniform(0.35, 0.55)
    surface = image.reshape(-1, 3).mean(axis=0)
    color = np.clip(surface + rng.uniform(-40, 40, 3), 0, 255).astype(np.float32)
    out = image.astype(np.float32) * (1 - alpha[..., None]) + color * alpha[..., None]
    mask = alpha >= 0.5 * alpha.max()
    return out.astype(np.uint8), mask.astype(np.uint8) * 255


def perlin_noise(side: int, cells: int, rng: np.random.Generator) -> np.ndarray:
    """Gradient (Perlin) noise on a ``cells`` x ``cells`` lattice, sampled at ``side`` x ``side`` pixels."""
    angles = rng.uniform(0, 2 * np.pi, (cells + 1, cells + 1))
    gradients = np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    y, x = np.meshgrid(*(np.arange(side) * cells / side,) * 2, indexing="ij")
    i, j = y.astype(int), x.astype(int)
    fy, fx = y - i, x - j

    def corner(di: int, dj: int) -> np.ndarray:
        g = gradients[i + di, j + dj]
        return g[..., 0] * (fy - di) + g[..., 1] * (fx - dj)

    def fade(t: np.ndarray) -> np.ndarray:
        return 6 * t**5 - 15 * t**4 + 10 * t**3

    u, v = fade(fy), fade(fx)
    return (corner(0, 0) * (1 - u) + corner(1, 0) * u) * (1 - v) + (
        corner(0, 1) * (1 - u) + corner(1, 1) * u
    ) * v


def contamination(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    side = image.shape[0]
    cx, cy = _center(side, rng)
    noise = perlin_noise(side, 4, rng) + 0.5 * perlin_noise(side, 8, rng)
    yy, xx = np.mgrid[:side, :side]
    window = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (0.09 * side) ** 2))
    field = (noise - noise.min()) * window
    mask = field > np.quantile(field, 0.97)
    foreign = load_photo(str(rng.choice(["grass", "astronaut", "immunohistochemistry"])))
    top = int(rng.integers(0, foreign.shape[0] - side + 1))
    left = int(rng.integers(0, foreign.shape[1] - side + 1))
    patch = foreign[top : top + side, left : left + side].astype(np.float32)
    surface = image.reshape(-1, 3).astype(
        np.float32
    )  # recolored to the surface: foreign structure, own colors
    flat = patch.reshape(-1, 3)
    patch = (patch - flat.mean(axis=0)) / (flat.std(axis=0) + 1e-6) * surface.std(axis=0) + surface.mean(
        axis=0
    )
    beta = rng.uniform(0.5, 0.8)
    out = image.astype(np.float32)
    out[mask] = beta * patch[mask] + (1 - beta) * out[mask]
    return np.clip(out, 0, 255).astype(np.uint8), mask.astype(np.uint8) * 255


DEFECT_MAKERS: dict[str, Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]] = {
    "scratch": scratch,
    "hole": hole,
    "stain": stain,
    "contamination": contamination,
}


def write_mvtec_standin(out_dir: Path, size: str = "small", seed: int = 0) -> Path:
    """Write the stand-in in the MVTec AD layout under ``out_dir`` (one folder per category)."""
    categories, side, n_train, n_test_good, n_per_defect = SIZES[size]
    description = {
        "layout": "mvtec_ad",
        "version": STANDIN_VERSION,
        "seed": seed,
        "size": size,
        "side": side,
        "categories": list(categories),
        "defects": list(DEFECTS),
        "prior_photos": PRIOR_CATEGORY,
    }
    with standin_folder(out_dir, description) as tmp:
        for index, category in enumerate(categories):
            rng = np.random.default_rng([seed, index])
            base = tmp / category
            for i in range(n_train):
                save_png(normal_sample(category, side, rng), base / "train" / "good" / f"{i:03d}.png")
            for i in range(n_test_good):
                save_png(normal_sample(category, side, rng), base / "test" / "good" / f"{i:03d}.png")
            for defect in DEFECTS:
                for i in range(n_per_defect):
                    image, mask = DEFECT_MAKERS[defect](normal_sample(category, side, rng), rng)
                    save_png(image, base / "test" / defect / f"{i:03d}.png")
                    save_png(mask, base / "ground_truth" / defect / f"{i:03d}_mask.png")
        rng = np.random.default_rng([seed, len(CATEGORIES)])
        n_train, n_test = PRIOR_SIZES[size]
        crops = random_crops(prior_photos(), n_train + n_test, side, rng, scale=(1.0, 2.0))
        for i, crop in enumerate(crops):
            split = "train" if i < n_train else "test"
            save_png(crop, tmp / PRIOR_CATEGORY / split / "good" / f"{i:03d}.png")
    return out_dir
