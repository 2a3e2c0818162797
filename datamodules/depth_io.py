"""Reading and normalizing depth maps (ToF captures): 16-bit PNG in millimetres or float ``.npy``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from datamodules.image_io import BadImageError, upright

DEPTH_EXTENSIONS = (".png", ".npy")


def read_depth(path: str | Path) -> np.ndarray:
    """A depth map as (H, W) float32 in the file's unit (millimetres for 16-bit PNGs); 0 marks no measurement.

    Raises :class:`BadImageError` naming the file when it cannot be decoded or is not a single-channel map.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            depth = np.load(path, allow_pickle=False)
        else:
            with Image.open(path) as image:
                image.load()
                if image.mode not in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F", "L"):
                    raise ValueError(f"mode {image.mode} is not a depth map (16-bit or float single channel)")
                depth = np.asarray(upright(image))  # oriented as its RGB capture is
    except (OSError, SyntaxError, ValueError) as error:
        raise BadImageError(f"{path}: cannot read depth ({type(error).__name__}: {error})") from error
    depth = np.squeeze(np.asarray(depth, dtype=np.float32))
    if depth.ndim != 2:
        raise BadImageError(f"{path}: depth must be a (H, W) map, got shape {depth.shape}")
    return depth


def normalize_depth(depth: np.ndarray, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """Per capture: clip the valid (> 0, finite) values to their [low, high] percentiles and min-max them to
    [0, 1]; missing measurements become 0. A capture with no valid or constant depth becomes all 0.5 / 0."""
    valid = np.isfinite(depth) & (depth > 0)
    out = np.zeros(depth.shape, dtype=np.float32)
    if not valid.any():
        return out
    lo, hi = np.percentile(depth[valid], [low, high])
    if hi <= lo:
        out[valid] = 0.5
        return out
    out[valid] = (np.clip(depth[valid], lo, hi) - lo) / (hi - lo)
    return out
