"""Real faces for stand-ins: the 100 face crops of scikit-image's LFW subset (``skimage.data.lfw_subset``), and how
to paint one into a color portrait.

The crops are 25x25 grayscale, tightly framed (eyes at about 40 % of the height). A portrait up-samples one,
tints it with a skin tone and puts it on a smooth background, so a stand-in keeps a real person's face and only
synthesizes what its method must see (an attribute, a motion).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from PIL import Image

FACE_COUNT = 100  # lfw_subset: 100 faces, then 100 non-face patches
EYE_LINE = 0.40  # eye height as a share of the crop's side
SKIN_TONES = {"pale": (252, 228, 218), "tan": (196, 142, 104)}
BACKGROUNDS = [(70, 90, 120), (150, 150, 140), (110, 80, 60), (60, 110, 90), (190, 180, 150), (90, 70, 110)]


@cache
def lfw_faces() -> np.ndarray:
    """The LFW subset's faces as (100, 25, 25) float32 in [0, 1]."""
    from skimage import data

    return np.asarray(data.lfw_subset()[:FACE_COUNT], dtype=np.float32)


def gradient_background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A vertical blend of two background colors, lightly noised, as (H, W, 3) float32 in [0, 255]."""
    top, bottom = (np.array(BACKGROUNDS[i], dtype=np.float32) for i in rng.choice(len(BACKGROUNDS), 2))
    blend = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    image = np.broadcast_to(top * (1 - blend) + bottom * blend, (height, width, 3)).copy()
    return image + rng.normal(0, 3, size=image.shape).astype(np.float32)


def tinted_face(face: np.ndarray, side: int, tone: tuple[int, int, int]) -> np.ndarray:
    """A grayscale crop up-sampled to ``side`` (bicubic) and tinted: (side, side, 3) float32 in [0, 255]."""
    up = Image.fromarray((face * 255).astype(np.uint8)).resize((side, side), Image.Resampling.BICUBIC)
    gray = np.asarray(up, dtype=np.float32)[..., None] / 255.0
    return gray * np.array(tone, dtype=np.float32)
