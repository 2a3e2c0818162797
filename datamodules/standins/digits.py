"""The handwritten digits (scikit-learn's 1,797 real 8×8 scans) the digit stand-ins are drawn from, split once.

The MNIST-layout and CIFAR-layout stand-ins both render these scans; they split them the same way, here: a seeded
permutation (of the first ``limit`` scans when given), its last ``test_share`` the test split.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

DIGITS_SOURCE = "sklearn.datasets.load_digits (1797 scans)"


class DigitSplits(NamedTuple):
    scans: np.ndarray  # (1797, 8, 8) grey levels 0..16
    labels: np.ndarray  # (1797,) int64 digits
    train: np.ndarray  # indices into scans
    test: np.ndarray


def digit_splits(rng: np.random.Generator, test_share: float, limit: int | None = None) -> DigitSplits:
    """The scans, their labels and a train / test split drawn from ``rng`` (which the caller goes on using)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = rng.permutation(len(digits.images))[:limit]
    cut = int(len(order) * (1 - test_share))
    return DigitSplits(digits.images, digits.target.astype(np.int64), order[:cut], order[cut:])
