"""A datamodule's image pipeline as numbers a reader can apply without Python: what ``model.json`` says.

An exported model takes the tensor ``predict`` feeds it; someone calling it from C++, Java or a browser must
produce that tensor from a file. Each albumentations step becomes a dictionary of plain values (sizes, the
resize rule and interpolation with the OpenCV call it matches, the crop's offset rule, the scaling), in order, so
that the tensor can be rebuilt with any image library (a test rebuilds ``predict``'s scores from the raw files with
PIL and NumPy alone).
"""

from __future__ import annotations

from typing import Any

import albumentations as A
from albumentations.pytorch import ToTensorV2

READ = {
    "step": "read",
    "as": "8-bit RGB (H, W, 3); grayscale, palette, CMYK and 16-bit files converted (16-bit / 257), alpha dropped",
    "orientation": "EXIF orientation applied first (PIL: ImageOps.exif_transpose)",
}
TO_TENSOR = {
    "step": "to_tensor",
    "layout": "float32 (1, 3, H, W): channels first, a batch dimension in front",
}
SCALE = {"step": "scale", "divide_by": 255.0, "range": "[0, 1]"}
# OpenCV interpolation flags, as albumentations passes them to cv2.resize
INTERPOLATIONS = {
    0: ("nearest", "cv2.INTER_NEAREST"),
    1: (
        "bilinear: output pixel (x, y) samples the input at ((x + 0.5) * in / out - 0.5, likewise y), clamped to "
        "the border, weights from the fractional parts; no antialiasing when shrinking; OpenCV computes 8-bit "
        "images in fixed point (weights in 1/2048)",
        "cv2.INTER_LINEAR",
    ),
    2: ("bicubic", "cv2.INTER_CUBIC"),
    3: ("area average", "cv2.INTER_AREA"),
    4: ("Lanczos over 8 x 8", "cv2.INTER_LANCZOS4"),
}


def describe(transform: Any) -> list[dict[str, Any]]:
    """The steps of an albumentations ``Compose`` (or a list of transforms), from the decoded RGB image on."""
    steps = list(getattr(transform, "transforms", transform))
    return [_step(t) for t in steps]


def pipeline(transform: Any) -> list[dict[str, Any]]:
    """The whole way from a file to the model's input: read, ``transform``'s steps, then the scaling to [0, 1] and
    the channels-first tensor where the transform leaves them to the dataset."""
    steps = [READ, *describe(transform)]
    if not any(s["step"] == "scale" for s in steps):
        steps.append(SCALE)
    if not any(s["step"] == "to_tensor" for s in steps):
        steps.append(TO_TENSOR)
    return steps


def _interpolation(code: int) -> dict[str, str]:
    name, call = INTERPOLATIONS.get(int(code), (f"OpenCV flag {code}", f"cv2 flag {code}"))
    return {"interpolation": name, "matches": f"cv2.resize(image, (width, height), interpolation={call})"}


def _step(transform: Any) -> dict[str, Any]:
    if isinstance(transform, A.SmallestMaxSize | A.LongestMaxSize) and transform.max_size is not None:
        side = "shorter" if isinstance(transform, A.SmallestMaxSize) else "longer"
        return {
            "step": "resize",
            "rule": f"the {side} side to {transform.max_size}, aspect kept: each side becomes "
            f"round(side * {transform.max_size} / {side} side), halves to even, at least 1",
            "size": transform.max_size,
            **_interpolation(transform.interpolation),
        }
    if isinstance(transform, A.Resize):
        return {
            "step": "resize",
            "rule": "both sides to the given size (aspect not kept)",
            "height": transform.height,
            "width": transform.width,
            **_interpolation(transform.interpolation),
        }
    if isinstance(transform, A.CenterCrop):
        return {
            "step": "center_crop",
            "height": transform.height,
            "width": transform.width,
            "offset": "top = floor((H - height) / 2), left = floor((W - width) / 2)",
            "pad_if_needed": bool(getattr(transform, "pad_if_needed", False)),
        }
    if isinstance(transform, A.PadIfNeeded):
        return {
            "step": "pad",
            "min_height": transform.min_height,
            "min_width": transform.min_width,
            "fill": getattr(transform, "fill", 0),
            "where": "evenly on both sides (the odd pixel at the bottom / right)",
        }
    if isinstance(transform, A.ToFloat):
        return {**SCALE, "divide_by": float(transform.max_value)}
    if isinstance(transform, ToTensorV2):
        return TO_TENSOR
    return {"step": type(transform).__name__, "as_albumentations_writes_it": repr(transform)}
