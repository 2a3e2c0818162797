"""The RGB + ToF anti-spoofing stand-in (version 3): genuine objects and flat genuine prints vs recaptured displays.

What it is built to contain (``scripts/check_standin.py --layout rgbd`` measures both without training):

* **the cue mToFNet learns from genuine captures alone**: a genuine 3-D object's depth follows what its RGB
  shows (the relief is the photo's smoothed luminance, 85 %, plus a few bumps, 25–300 mm deep), up to ToF noise;
  a genuine print (scikit-image's page, text, logo, color wheel, horse, checkerboard on paper, tilted) is flat
  and looks like paper. A display shows a photo of a 3-D scene on a flat or curved screen: RGB and depth disagree;
* **no shortcut**: flatness alone does not decide, for any one display either (a third of the genuine captures
  are flat prints, shallow objects exist, curved screens are not planes, and a screen's glossy glass bends its ToF
  depth by a smooth multipath warp of 2-20 mm that follows nothing in the picture; version 2 had none, and there
  the plane-fit residual alone told each flat display from genuine captures at 81-84 % AUC), and the display
  moiré that a supervised model latches onto
  does not transfer: each display family has its own pitch, angle and strength, the unseen displays' faint
  (amplitude 0.03) and fine (pitch <= 2 px), the seen ones' strong and coarse. Displays still differ in gamma,
  gamut and glare (with missing ToF returns under the glare spot), flat and curved on both sides of the split.

Depth is coarser than RGB (half the side, like a phone's ToF sensor) and has holes; most depth maps are 16-bit
PNGs in millimetres, every fourth a float ``.npy``. Displays split into seen (train, val, test) and unseen (test
only): leave-display-out. ``captures.json`` records what each capture is (kind, content, relief), for the
stand-in check only; the datamodule reads the folders.

Layout: ``<split>/{genuine,spoof}/<objects|prints or display>/<capture_id>_rgb.png`` + ``_depth.{png,npy}``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from datamodules.standins.photos import load_photo, random_crops, save_png, standin_folder

STANDIN_VERSION = 3
PRESETS = {
    "tiny": {
        "size": 32,
        "genuine": {"train": 12, "val": 6, "test": 6},
        "per_display": {"train": 2, "val": 2, "test": 2},
    },
    "small": {
        "size": 48,
        "genuine": {"train": 480, "val": 96, "test": 120},
        "per_display": {"train": 60, "val": 20, "test": 40},
    },
}
SCENES = ("chelsea", "astronaut", "motorcycle_left", "rocket", "coffee", "camera", "immunohistochemistry")
PRINTS = ("page", "text", "logo", "colorwheel", "horse", "checkerboard")
# display -> moiré pitch (px at 64 px captures), angle (degrees), amplitude, gamma, curvature (mm)
DISPLAYS: dict[str, dict[str, float]] = {
    "galaxy_s20": {"pitch": 3.4, "angle": 12, "amplitude": 0.14, "gamma": 1.25, "curvature": 0},
    "lg_lcd": {"pitch": 4.6, "angle": 35, "amplitude": 0.16, "gamma": 0.85, "curvature": 0},
    "curved_monitor": {"pitch": 5.5, "angle": 62, "amplitude": 0.15, "gamma": 1.05, "curvature": 25},
    "imac_lcd": {"pitch": 1.8, "angle": 5, "amplitude": 0.03, "gamma": 0.90, "curvature": 0},
    "iphone_11_pro": {"pitch": 1.6, "angle": 50, "amplitude": 0.03, "gamma": 1.35, "curvature": 0},
    "curved_led": {"pitch": 2.0, "angle": 80, "amplitude": 0.03, "gamma": 1.00, "curvature": 30},
}
SEEN_DISPLAYS = ("galaxy_s20", "lg_lcd", "curved_monitor")
SPLITS = ("train", "val", "test")


def write_rgbd_standin(out_dir: str | Path, size: str = "small", seed: int = 0) -> Path:
    """Write the stand-in into ``out_dir`` (atomically) and return it."""
    if size not in PRESETS:
        raise ValueError(f"stand-in size must be one of {sorted(PRESETS)}, got {size!r}")
    preset = PRESETS[size]
    side = preset["size"]
    rng = np.random.default_rng(seed)
    scenes = {n: load_photo(n) for n in SCENES}
    prints = {n: print_source(n) for n in PRINTS}
    description = {
        "layout": "rgbd_spoof",
        "version": STANDIN_VERSION,
        "size": size,
        "seed": seed,
        "seen_displays": list(SEEN_DISPLAYS),
        "unseen_displays": [d for d in DISPLAYS if d not in SEEN_DISPLAYS],
        "source": "skimage.data photos (scenes) and documents (prints)",
    }
    with standin_folder(Path(out_dir), description) as tmp:
        captures: dict[str, dict[str, object]] = {}
        count = 0
        for split in SPLITS:
            for index in range(preset["genuine"][split]):
                if index % 3 == 2:  # a third of the genuine captures, in every split
                    content = PRINTS[rng.integers(len(PRINTS))]
                    picture = random_crops((prints[content],), 1, side, rng, scale=(1.0, 2.0))[0]
                    rgb, depth = print_capture(picture, rng)
                    kind, relief = "prints", 0.0
                else:
                    content = SCENES[rng.integers(len(SCENES))]
                    relief = float(np.exp(rng.uniform(np.log(25), np.log(300))))
                    picture = random_crops((scenes[content],), 1, side, rng)[0]
                    rgb, depth = object_capture(picture, relief, rng)
                    kind = "objects"
                capture = f"{split}_g{index:04d}"
                _save(tmp / split / "genuine" / kind, capture, rgb, depth, count)
                captures[f"{split}/genuine/{kind}/{capture}"] = {
                    "content": content,
                    "relief_mm": round(relief, 1),
                }
                count += 1
            displays = SEEN_DISPLAYS if split != "test" else tuple(DISPLAYS)
            for display in displays:
                for index in range(preset["per_display"][split]):
                    content = SCENES[rng.integers(len(SCENES))]
                    picture = random_crops((scenes[content],), 1, side, rng)[0]
                    rgb, depth = spoof_capture(picture, DISPLAYS[display], rng)
                    capture = f"{split}_{display}_{index:04d}"
                    _save(tmp / split / "spoof" / display, capture, rgb, depth, count)
                    captures[f"{split}/spoof/{display}/{capture}"] = {"content": content, "relief_mm": 0.0}
                    count += 1
        (tmp / "captures.json").write_text(json.dumps(captures, indent=1) + "\n")
    return Path(out_dir)


def print_source(name: str) -> np.ndarray:
    """A document-like scikit-image picture as (H, W, 3) uint8, on white where it has transparency."""
    from skimage import data

    image = np.asarray(getattr(data, name)())
    if image.dtype == bool:
        image = np.where(image, 30, 235).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.shape[2] == 4:
        alpha = image[..., 3:4].astype(np.float32) / 255.0
        image = (image[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(image[..., :3])


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


def relief_shape(rgb: np.ndarray) -> np.ndarray:
    """The part of a genuine object's relief its RGB predicts: smoothed luminance scaled to [0, 1] (bright parts
    nearer, as lit surfaces facing the camera)."""
    side = rgb.shape[0]
    luminance = gaussian_filter(rgb.astype(np.float32).mean(axis=2) / 255.0, sigma=side / 12)
    return (luminance - luminance.min()) / max(float(luminance.max() - luminance.min()), 1e-6)


def _tilted_plane(side: int, rng: np.random.Generator) -> np.ndarray:
    """Depth (mm) of a flat surface the phone is not parallel to: 250-450 mm away, up to 60 mm of tilt."""
    grid = np.mgrid[0:side, 0:side].astype(np.float32) / side - 0.5
    tilt = rng.uniform(-60, 60, 2)
    return rng.uniform(250, 450) + tilt[0] * grid[0] + tilt[1] * grid[1]


def object_capture(rgb: np.ndarray, relief: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8, depth in mm) of a 3-D object ``relief`` mm deep whose shape its RGB shows."""
    side = rgb.shape[0]
    yy, xx = np.mgrid[0:side, 0:side] / side
    bumps = sum(
        np.exp(-((xx - rng.uniform()) ** 2 + (yy - rng.uniform()) ** 2) / (2 * rng.uniform(0.1, 0.3) ** 2))
        for _ in range(3)
    )
    shape = 0.85 * relief_shape(rgb) + 0.15 * bumps / max(float(bumps.max()), 1e-6)
    depth = rng.uniform(350, 550) - relief * shape
    return rgb, _tof_noise(depth, rng)


def print_capture(content: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8, depth in mm) of ``content`` printed on paper: matte, fibrous, lit unevenly, flat and tilted."""
    side = content.shape[0]
    paper = np.array([1.0, 0.98, 0.93]) * rng.uniform(0.9, 1.0)  # a warm white
    image = content.astype(np.float32) / 255.0 * paper
    fibers = gaussian_filter(rng.normal(0, 1, (side, side)), sigma=0.7)
    grid = np.mgrid[0:side, 0:side].astype(np.float32) / side - 0.5
    light = 1 + rng.uniform(-0.12, 0.12) * grid[0] + rng.uniform(-0.12, 0.12) * grid[1]
    image = image * light[..., None] * (1 + 0.05 * fibers[..., None]) + rng.normal(0, 0.01, image.shape)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8), _tof_noise(_tilted_plane(side, rng), rng)


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
    spot = np.exp(-((xx * side / 64 - cx) ** 2 + (yy * side / 64 - cy) ** 2) / (2 * (side / 4) ** 2))
    glare = rng.uniform(0.1, 0.4) * spot
    image = np.clip(image + glare[..., None] + rng.normal(0, 0.01, image.shape), 0, 1)
    grid = np.mgrid[0:side, 0:side].astype(np.float32) / side - 0.5
    depth = _tilted_plane(side, rng) + display["curvature"] * (grid[1] * 2) ** 2
    # ToF on glossy glass: multipath bends the measured surface by a smooth warp, 2-20 mm RMS (log-uniform), so a
    # flat screen is not the clean plane a "flat = spoof" rule needs; no warp follows the picture shown
    warp = gaussian_filter(rng.normal(0, 1, (side, side)), sigma=side / 5)
    depth = depth + float(np.exp(rng.uniform(np.log(2), np.log(20)))) * warp / max(float(warp.std()), 1e-6)
    depth = _tof_noise(depth, rng)
    depth[(spot > 0.7) & (rng.random(depth.shape) < 0.5)] = 0.0  # the glass's glare saturates the ToF sensor
    return (image * 255).round().astype(np.uint8), depth
