"""The RGB + ToF anti-spoofing stand-in: genuine captures of 3-D scenes vs recaptures of a display.

Genuine: crops of scikit-image's photos with a non-planar depth that follows the scene — for the motorcycle,
the real disparity map of its stereo pair (depth = f·B / disparity); for the others a surface shaped by the
photo's smoothed luminance plus a few bumps, 150–300 mm of relief. Spoof: another crop shown on a display and
photographed again — the display's gamma and color-gamut shift, a moiré pattern whose pitch and angle belong to
the display model, glare — with the depth of the display: a tilted plane (the curved monitor slightly bent)
with ToF noise. Depth is coarser than RGB (half the side, like a phone's ToF sensor) and has holes; most depth
maps are 16-bit PNGs in millimetres, every fourth a float ``.npy``. Displays split into seen (train, val, test)
and unseen (test only): leave-display-out.

Layout: ``<split>/{genuine,spoof}/<device or display>/<capture_id>_rgb.png`` + ``<capture_id>_depth.{png,npy}``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from datamodules.standins.photos import PHOTO_CATEGORIES, load_photo, random_crops, save_png, standin_folder

STANDIN_VERSION = 1
PRESETS = {
    "tiny": {
        "size": 32,
        "genuine": {"train": 8, "val": 4, "test": 4},
        "per_display": {"train": 2, "val": 2, "test": 2},
    },
    "small": {
        "size": 64,
        "genuine": {"train": 160, "val": 48, "test": 60},
        "per_display": {"train": 40, "val": 12, "test": 20},
    },
}
DEVICES = ("phone_a", "phone_b")
# display model -> moiré pitch (px at 64 px captures), angle (degrees), moiré amplitude, gamma, curvature (mm)
DISPLAYS: dict[str, dict[str, float]] = {
    "galaxy_s20": {"pitch": 3.1, "angle": 12, "amplitude": 0.10, "gamma": 1.25, "curvature": 0},
    "lg_lcd": {"pitch": 4.3, "angle": 35, "amplitude": 0.14, "gamma": 0.85, "curvature": 0},
    "ipad_6": {"pitch": 2.6, "angle": 70, "amplitude": 0.12, "gamma": 1.10, "curvature": 0},
    "imac_lcd": {"pitch": 6.5, "angle": 5, "amplitude": 0.12, "gamma": 0.90, "curvature": 0},
    "iphone_11_pro": {"pitch": 2.1, "angle": 50, "amplitude": 0.06, "gamma": 1.35, "curvature": 0},
    "curved_led": {"pitch": 8.0, "angle": 80, "amplitude": 0.15, "gamma": 1.0, "curvature": 15},
}
SEEN_DISPLAYS = ("galaxy_s20", "lg_lcd", "ipad_6")
SPLITS = ("train", "val", "test")


def write_rgbd_standin(out_dir: str | Path, size: str = "small", seed: int = 0) -> Path:
    """Write the stand-in into ``out_dir`` (atomically) and return it."""
    if size not in PRESETS:
        raise ValueError(f"stand-in size must be one of {sorted(PRESETS)}, got {size!r}")
    preset = PRESETS[size]
    side = preset["size"]
    rng = np.random.default_rng(seed)
    photos = {name: load_photo(name) for names in PHOTO_CATEGORIES.values() for name in names}
    description = {
        "layout": "rgbd_spoof",
        "version": STANDIN_VERSION,
        "size": size,
        "seed": seed,
        "seen_displays": list(SEEN_DISPLAYS),
        "unseen_displays": [d for d in DISPLAYS if d not in SEEN_DISPLAYS],
        "source": "skimage.data photos and the stereo_motorcycle disparity map",
    }
    with standin_folder(Path(out_dir), description) as tmp:
        count = 0
        for split in SPLITS:
            for index in range(preset["genuine"][split]):
                rgb, depth = genuine_capture(photos, side, rng)
                _save(
                    tmp / split / "genuine" / DEVICES[index % len(DEVICES)],
                    f"{split}_g{index:04d}",
                    rgb,
                    depth,
                    count,
                )
                count += 1
            displays = SEEN_DISPLAYS if split != "test" else tuple(DISPLAYS)
            for display in displays:
                for index in range(preset["per_display"][split]):
                    content = random_crops(tuple(photos.values()), 1, side, rng)[0]
                    rgb, depth = spoof_capture(content, DISPLAYS[display], rng)
                    _save(
                        tmp / split / "spoof" / display, f"{split}_{display}_{index:04d}", rgb, depth, count
                    )
                    count += 1
    return Path(out_dir)


def _save(folder: Path, capture_id: str, rgb: np.ndarray, depth_mm: np.ndarray, count: int) -> None:
    save_png(rgb, folder / f"{capture_id}_rgb.png")
    coarse = np.asarray(
        Image.fromarray(depth_mm.astype(np.float32)).resize(
            (rgb.shape[1] // 2, rgb.shape[0] // 2), Image.Resampling.NEAREST
        )
    )
    if count % 4 == 3:
        np.save(folder / f"{capture_id}_depth.npy", coarse.astype(np.float32))
    else:
        Image.fromarray(np.clip(np.rint(coarse), 0, 65535).astype(np.uint16)).save(
            folder / f"{capture_id}_depth.png"
        )


def _tof_noise(
    depth: np.ndarray, rng: np.random.Generator, sigma: float = 3.0, holes: float = 0.02
) -> np.ndarray:
    noisy = depth + rng.normal(0, sigma, depth.shape)
    noisy[rng.random(depth.shape) < holes] = 0.0  # no return: ToF's missing measurements
    return noisy


def genuine_capture(
    photos: dict[str, np.ndarray], side: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8, depth in mm) of a 3-D scene."""
    name = list(photos)[rng.integers(len(photos))]
    if name.startswith("motorcycle"):
        return _motorcycle(side, rng)
    rgb = random_crops((photos[name],), 1, side, rng)[0]
    luminance = gaussian_filter(rgb.astype(np.float32).mean(axis=2) / 255.0, sigma=side / 12)
    yy, xx = np.mgrid[0:side, 0:side] / side
    bumps = sum(
        rng.uniform(0.3, 1.0)
        * np.exp(-((xx - rng.uniform()) ** 2 + (yy - rng.uniform()) ** 2) / (2 * rng.uniform(0.1, 0.3) ** 2))
        for _ in range(3)
    )
    relief = rng.uniform(150, 300)
    depth = rng.uniform(350, 550) - relief * (0.6 * luminance + 0.4 * bumps / max(float(bumps.max()), 1e-6))
    return rgb, _tof_noise(depth, rng)


def _motorcycle(side: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    from skimage import data

    left, _, disparity = data.stereo_motorcycle()
    height, width = disparity.shape
    crop = int(rng.integers(side * 2, min(height, width) // 2))
    top, left_x = int(rng.integers(0, height - crop)), int(rng.integers(0, width - crop))
    rgb = np.asarray(
        Image.fromarray(left[top : top + crop, left_x : left_x + crop]).resize(
            (side, side), Image.Resampling.BOX
        )
    )
    window = disparity[top : top + crop, left_x : left_x + crop].astype(np.float32)
    window = np.where(np.isfinite(window) & (window > 0), window, 0.0)
    window = np.asarray(Image.fromarray(window).resize((side, side), Image.Resampling.NEAREST))
    # Middlebury 2014 Motorcycle calibration: focal 3979.911 px, baseline 193.001 mm, doffs 124.343 px
    depth = np.where(window > 0, 193.001 * 3979.911 / (window + 124.343), 0.0)
    return rgb, _tof_noise(depth, rng)


def spoof_capture(
    content: np.ndarray, display: dict[str, float], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8, depth in mm) of ``content`` shown on ``display`` and photographed."""
    side = content.shape[0]
    image = (content.astype(np.float32) / 255.0) ** display["gamma"]
    gamut = np.eye(3) + rng.normal(0, 0.04, (3, 3))  # the panel's primaries
    image = np.clip(image @ gamut.T, 0, 1)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) * (64.0 / side)
    angle = np.deg2rad(display["angle"] + rng.normal(0, 2))
    pitch = display["pitch"] * rng.uniform(0.95, 1.05)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    moire = 1 + display["amplitude"] * np.cos(2 * np.pi * u / pitch + rng.uniform(0, 2 * np.pi)) * (
        0.6 + 0.4 * np.cos(2 * np.pi * v / (pitch * 5))
    )
    image = image * moire[..., None]
    cy, cx = rng.uniform(0, side, 2)
    glare = rng.uniform(0.1, 0.4) * np.exp(
        -((xx * side / 64 - cx) ** 2 + (yy * side / 64 - cy) ** 2) / (2 * (side / 4) ** 2)
    )
    image = np.clip(image + glare[..., None] + rng.normal(0, 0.01, image.shape), 0, 1)
    grid = np.mgrid[0:side, 0:side].astype(np.float32) / side - 0.5
    tilt = rng.uniform(-60, 60, 2)  # mm across the capture: the phone is not parallel to the screen
    bend = display["curvature"] * (grid[1] * 2) ** 2
    depth = rng.uniform(250, 450) + tilt[0] * grid[0] + tilt[1] * grid[1] + bend
    return (image * 255).round().astype(np.uint8), _tof_noise(depth, rng)
