"""Reading image files of any common mode as 3-channel uint8 arrays, and listing image files in a folder.

Real datasets mix grayscale, palette, RGBA and 16-bit PNGs with ordinary RGB JPEGs; every model here expects
(H, W, 3) uint8, so the conversion happens once, here, instead of in each dataset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})


class BadImageError(OSError):
    """An image file that cannot be decoded (corrupt, truncated or not an image)."""


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode ``path`` into an (H, W, 3) uint8 array, whatever its mode (L, P, LA, RGBA, CMYK, I;16, I, F).

    16-bit and 32-bit images are scaled to 8 bits by their type's range (I;16: /257) rather than clipped, so a
    16-bit PNG keeps its picture. Alpha is dropped. Raises :class:`BadImageError` naming the file on any
    decoding failure, including truncated files (PIL's ``LOAD_TRUNCATED_IMAGES`` stays off on purpose).
    """
    try:
        with Image.open(path) as image:
            image.load()
            return _to_rgb_uint8(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise BadImageError(f"{path}: cannot decode image ({type(error).__name__}: {error})") from error


def _to_rgb_uint8(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        array = np.asarray(image, dtype=np.float32) / 257.0
    elif image.mode in ("I", "F"):
        array = np.asarray(image, dtype=np.float32)
        high = 65535.0 if array.max(initial=0) > 255 else 255.0
        array = array * (255.0 / high)
    else:
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    gray = np.clip(np.rint(array), 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def list_images(folder: str | Path, recursive: bool = True) -> list[Path]:
    """All image files under ``folder`` (by extension, case-insensitive), sorted for a stable order."""
    folder = Path(folder)
    candidates = folder.rglob("*") if recursive else folder.glob("*")
    return sorted(p for p in candidates if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
