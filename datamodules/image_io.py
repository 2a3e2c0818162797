"""Reading image files of any common mode as 3-channel uint8 arrays, and listing image files in a folder.

Real datasets mix grayscale, palette, RGBA and 16-bit PNGs with ordinary RGB JPEGs; every model here expects
(H, W, 3) uint8, so the conversion happens once, here, instead of in each dataset. A phone photo stored sideways
with an EXIF orientation tag is turned upright here too, so training, test and predict see (and draw) it as a
viewer shows it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})


class BadImageError(OSError):
    """An image file that cannot be decoded (corrupt, truncated or not an image)."""


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode ``path`` into an (H, W, 3) uint8 array, whatever its mode (L, P, LA, RGBA, CMYK, I;16, I, F).

    16-bit and 32-bit images are scaled to 8 bits by their type's range (I;16: /257) rather than clipped, so a
    16-bit PNG keeps its picture. Alpha is dropped. The EXIF orientation is applied (the picture as a viewer
    shows it). Raises :class:`BadImageError` naming the file on any decoding failure, including truncated files
    (PIL's ``LOAD_TRUNCATED_IMAGES`` stays off on purpose).
    """
    try:
        with Image.open(path) as image:
            image.load()
            return _to_rgb_uint8(upright(image))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise BadImageError(f"{path}: cannot decode image ({type(error).__name__}: {error})") from error


def upright(image: Image.Image) -> Image.Image:
    """``image`` rotated / flipped as its EXIF orientation tag says (itself when it has none)."""
    return ImageOps.exif_transpose(image) or image


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
    return survey_images(folder, recursive)[0]


def survey_images(folder: str | Path, recursive: bool = True) -> tuple[list[Path], dict[str, list[Path]]]:
    """(the image files under ``folder``, sorted; everything else found there, by why it is not one): folders
    named like images, links that lead nowhere (broken or looping) and files of other types, so a caller can
    account for every entry instead of letting them vanish."""
    folder = Path(folder)
    images: list[Path] = []
    others: dict[str, list[Path]] = {
        "folders named like images": [],
        "broken or looping links": [],
        "files of other types": [],
    }
    for entry in sorted(folder.rglob("*") if recursive else folder.glob("*")):
        named_like_image = entry.suffix.lower() in IMAGE_EXTENSIONS
        try:
            is_file, is_dir = entry.is_file(), entry.is_dir()
        except OSError:  # a link that loops
            is_file = is_dir = False
        if is_file:
            (images if named_like_image else others["files of other types"]).append(entry)
        elif is_dir:
            if named_like_image:
                others["folders named like images"].append(entry)
        elif entry.is_symlink():
            others["broken or looping links"].append(entry)
    return images, {why: found for why, found in others.items() if found}


def describe_others(others: dict[str, list[Path]], folder: Path) -> str:
    """ "1 folder named like an image (folder.jpg), 2 files of other types (a.txt, b.csv)" for a summary line."""
    parts = []
    for why, found in others.items():
        names = ", ".join(str(p.relative_to(folder)) for p in found[:3]) + (", ..." if len(found) > 3 else "")
        parts.append(f"{len(found)} {why} ({names})")
    return "; ".join(parts)
