"""What a few-shot anomaly training set is made of when normal images are added to the real shots: the share of
the real shots in every epoch (``real_fraction``), and the classical augmentation of ``augmented_normals``, the
control that generated normals are measured against.

Without a balance, 1 real image beside 200 generated ones is 0.5 % of what a baseline learns from, so it learns
the generated images' look (blurred, in the first text-guided runs) as "normal".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import albumentations as A


class Record(Protocol):
    real: bool


def epoch_order(records: Sequence[Record], length: int, real_fraction: float | None = None) -> list[int]:
    """The record indices one epoch visits. Without ``real_fraction``: every record once, cycled up to ``length``.
    With it, when added images exist: every added image at least once and the real ones cycled over
    ⌈real_fraction · n⌉ of the n samples (n at least ``length``), so reals are that share of each epoch."""
    reals = [i for i, r in enumerate(records) if r.real]
    added = [i for i, r in enumerate(records) if not r.real]
    if real_fraction is None or not added or not reals:
        return [i % len(records) for i in range(max(length, len(records)))]
    total = max(length, len(records), math.ceil(len(added) / (1 - real_fraction) - 1e-9))
    real_slots = max(len(reals), math.ceil(total * real_fraction - 1e-9))
    added_slots = max(len(added), total - real_slots)
    return [reals[i % len(reals)] for i in range(real_slots)] + [
        added[i % len(added)] for i in range(added_slots)
    ]


def control_transform() -> A.Compose:
    """The classical augmentation of ``augmented_normals``: the normal variation a few shots miss (pose within 4
    degrees, scale and position within 3 %, lighting within 7 %, a mirror image), drawn anew for every sample."""
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Affine(rotate=(-4, 4), scale=(0.97, 1.03), translate_percent=(-0.03, 0.03), border_mode=2, p=1),
            A.MultiplicativeNoise(multiplier=(0.93, 1.07), per_channel=False, elementwise=False, p=1),
        ]
    )
