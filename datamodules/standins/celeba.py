"""The CelebA stand-in: LFW faces (real people, see ``faces.py``) as 178x218 aligned portraits in CelebA's own layout.

``celeba/img_align_celeba/000001.jpg ...``, ``list_eval_partition.txt`` (0 train, 1 valid, 2 test; people are
disjoint between splits), ``list_attr_celeba.txt`` and ``identity_CelebA.txt``. The attribute file lists only the
attributes this writer renders, each drawn independently with probability 1/2 and true of the picture:

* ``Pale_Skin``: a pale skin tone instead of a tan one;
* ``Wearing_Hat``: a colored cap over the top of the head;
* ``Eyeglasses``: dark glasses over the eye line;
* ``Blurry``: a Gaussian blur of the whole picture.

Skin tone and a hat change which colors (so which VQ codes) an image holds; that is what a topic model over bags
of codes can group by. Deterministic in ``seed``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from datamodules.standins.faces import EYE_LINE, SKIN_TONES, gradient_background, lfw_faces, tinted_face
from datamodules.standins.photos import standin_folder

STANDIN_VERSION = 1
ATTRIBUTES = ("Pale_Skin", "Wearing_Hat", "Eyeglasses", "Blurry")
PRESETS = {"tiny": {"variants": 2}, "small": {"variants": 20}}
SPLIT_PEOPLE = (70, 10, 20)  # faces in train, valid, test
HEIGHT, WIDTH, FACE = 218, 178, 100
HAT_COLORS = [(200, 30, 40), (30, 50, 150), (40, 140, 60), (230, 180, 30)]


def render_portrait(face: np.ndarray, attributes: dict[str, bool], rng: np.random.Generator) -> np.ndarray:
    """One face crop as a (218, 178, 3) uint8 portrait with the given attributes, placed as CelebA aligns faces
    (inside the central 128x128 crop)."""
    image = gradient_background(HEIGHT, WIDTH, rng)
    side = int(FACE * rng.uniform(0.92, 1.08))
    top = 62 + int(rng.integers(-5, 6))
    left = (WIDTH - side) // 2 + int(rng.integers(-5, 6))
    tone = SKIN_TONES["pale" if attributes["Pale_Skin"] else "tan"]
    image[top : top + side, left : left + side] = tinted_face(face, side, tone)
    if attributes["Eyeglasses"]:
        eye_y, lens = top + int(EYE_LINE * side), side // 4
        for center in (left + int(0.30 * side), left + int(0.70 * side)):
            image[eye_y - lens // 3 : eye_y + lens // 3, center - lens // 2 : center + lens // 2] = 25.0
        image[eye_y - 2 : eye_y + 2, left + int(0.30 * side) : left + int(0.70 * side)] = 25.0
    if attributes["Wearing_Hat"]:
        color = np.array(HAT_COLORS[rng.integers(len(HAT_COLORS))], dtype=np.float32)
        brim = top + int(0.22 * side)
        image[max(0, top - 30) : brim, max(0, left - 8) : left + side + 8] = color
    picture = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    if attributes["Blurry"]:
        picture = picture.filter(ImageFilter.GaussianBlur(radius=3))
    return np.asarray(picture)


def write_celeba_standin(out_dir: str | Path, size: str = "small", seed: int = 0) -> Path:
    """Write the stand-in into ``out_dir/celeba`` (atomically) and return ``out_dir``."""
    if size not in PRESETS:
        raise ValueError(f"stand-in size must be one of {sorted(PRESETS)}, got {size!r}")
    faces = lfw_faces()
    rng = np.random.default_rng(seed)
    people = rng.permutation(len(faces))
    bounds = np.cumsum(SPLIT_PEOPLE)
    split_of = {int(p): int(np.searchsorted(bounds, i, side="right")) for i, p in enumerate(people)}
    variants = PRESETS[size]["variants"]
    description = {
        "layout": "celeba",
        "version": STANDIN_VERSION,
        "size": size,
        "seed": seed,
        "variants": variants,
        "attributes": list(ATTRIBUTES),
        "source": "skimage.data.lfw_subset (100 faces)",
    }
    with standin_folder(Path(out_dir), description) as tmp:
        folder = tmp / "celeba"
        (folder / "img_align_celeba").mkdir(parents=True)
        partition, attribute_rows, identities = [], [], []
        number = 0
        for person in sorted(split_of, key=lambda p: (split_of[p], p)):
            for _ in range(variants):
                number += 1
                name = f"{number:06d}.jpg"
                attributes = {a: bool(rng.random() < 0.5) for a in ATTRIBUTES}
                portrait = render_portrait(faces[person], attributes, rng)
                Image.fromarray(portrait).save(folder / "img_align_celeba" / name, quality=92)
                partition.append(f"{name} {split_of[person]}")
                attribute_rows.append(name + "".join(f" {1 if attributes[a] else -1:2d}" for a in ATTRIBUTES))
                identities.append(f"{name} {person + 1}")
        (folder / "list_eval_partition.txt").write_text("\n".join(partition) + "\n")
        header = f"{number}\n{' '.join(ATTRIBUTES)}\n"
        (folder / "list_attr_celeba.txt").write_text(header + "\n".join(attribute_rows) + "\n")
        (folder / "identity_CelebA.txt").write_text("\n".join(identities) + "\n")
    return Path(out_dir)
