"""Training-free scores that say what an RGB-D anti-spoofing stand-in contains (``check_standin.py --layout rgbd``).

* **planarity** (the shortcut): the residual of a least-squares plane fitted to the depth map. If it alone
  separated genuine captures from spoofs, a supervised RGB-D model would learn "flat = spoof" and transfer it to
  every display; flat genuine objects and curved screens must keep it from deciding.
* **oracle consistency** (the phenomenon mToFNet learns from genuine captures only): does the depth look like what
  the RGB shows? It knows the stand-in's generator: what each capture's picture is (``captures.json``'s content,
  never its label) and how a genuine object's relief follows its RGB. For a picture of a 3-D scene, the
  correlation of the plane-detrended depth with the relief its RGB predicts (1: as predicted; near 0 for a
  screen); for a document print, flatness, 1 - residual / 40 mm.

Both are scored so that higher = more genuine-like; the AUC is for genuine (positive) vs spoof.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from datamodules.depth_io import read_depth
from datamodules.standins.rgbd import PRINTS, relief_shape
from lightning_modules.metrics.detection import auroc

FLAT_SCALE_MM = 25.0  # the shallowest genuine object's relief


def plane_residual(depth: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(RMS residual in mm, the residual map over valid pixels, the valid mask) of a plane fitted to ``depth``."""
    valid = depth > 0
    yy, xx = np.nonzero(valid)
    design = np.stack([np.ones_like(xx), xx, yy], axis=1).astype(np.float64)
    values = depth[valid].astype(np.float64)
    coefficients, *_ = np.linalg.lstsq(design, values, rcond=None)
    residual = values - design @ coefficients
    return float(np.sqrt(np.mean(residual**2))), residual, valid


def consistency(rgb: np.ndarray, depth: np.ndarray, is_print: bool) -> float:
    """How well ``depth`` matches what ``rgb`` shows (see the module docstring), in [-1, 1]."""
    rms, residual, valid = plane_residual(depth)
    if is_print:
        return 1.0 - min(1.0, rms / FLAT_SCALE_MM)
    small = np.asarray(Image.fromarray(rgb).resize(depth.shape[::-1], Image.Resampling.BOX))
    expected = -relief_shape(small)[valid]  # bright = nearer: depth falls where the shape rises
    plane = np.stack([np.ones(valid.sum()), *np.nonzero(valid)], axis=1).astype(np.float64)
    fitted, *_ = np.linalg.lstsq(plane, expected, rcond=None)
    expected = expected - plane @ fitted  # detrended like the depth
    denominator = float(np.linalg.norm(expected) * np.linalg.norm(residual))
    return float(expected @ residual / denominator) if denominator > 0 else 0.0


def capture_scores(root: Path, splits: tuple[str, ...] = ("test",)) -> list[dict[str, object]]:
    """Per capture of ``splits``: label (0 genuine, 1 spoof), group (kind or display), both scores."""
    described = json.loads((root / "captures.json").read_text())
    rows = []
    for split in splits:
        for rgb_path in sorted((root / split).glob("*/*/*_rgb.png")):
            label_folder, group = rgb_path.parent.parent.name, rgb_path.parent.name
            capture = rgb_path.name.removesuffix("_rgb.png")
            depth_path = next(rgb_path.parent.glob(f"{capture}_depth.*"))
            rgb, depth = np.asarray(Image.open(rgb_path).convert("RGB")), read_depth(depth_path)
            info = described[f"{split}/{label_folder}/{group}/{capture}"]
            rows.append(
                {
                    "label": int(label_folder == "spoof"),
                    "group": group,
                    "planarity": plane_residual(depth)[0],
                    "consistency": consistency(rgb, depth, info["content"] in PRINTS),
                }
            )
    return rows


def auc_table(rows: list[dict[str, object]], score: str) -> dict[str, float]:
    """AUC (%) of ``score`` for all genuine captures vs all spoofs, and vs each display's."""
    genuine = [r for r in rows if r["label"] == 0]
    displays = sorted({str(r["group"]) for r in rows if r["label"] == 1})
    table = {}
    for name in ["all", *displays]:
        spoofs = [r for r in rows if r["label"] == 1 and (name == "all" or r["group"] == name)]
        values = torch.tensor([float(r[score]) for r in genuine + spoofs])
        labels = torch.tensor([1] * len(genuine) + [0] * len(spoofs))
        table[name] = 100 * auroc(values, labels)
    return table
