"""Class-aware subsets of a labelled set: a long-tailed profile and a stratified hold-out, seeded.

Shared by the image-classification datamodules (CIFAR-LT's training set and its calibration split) and the
logits stand-in (a long-tailed digits classifier), in their own file so neither imports the other.
"""

from __future__ import annotations

import numpy as np


def long_tailed_counts(max_count: int, num_classes: int, imbalance_factor: float) -> list[int]:
    """n_c = floor(n_max * rho^(-c / (C - 1))) for c = 0..C-1 (at least 1)."""
    return [max(1, int(max_count * imbalance_factor ** (-c / (num_classes - 1)))) for c in range(num_classes)]


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (kept, held out) with floor(fraction * n_c) held out per class, seeded."""
    rng = np.random.default_rng(seed)
    kept, held = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        cut = int(fraction * len(members))
        held.append(members[:cut])
        kept.append(members[cut:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held)) if held else np.array([], dtype=int)
