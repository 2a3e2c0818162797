"""The logits stand-in: a real classifier's logits on real images, long-tailed like SCTL's LT settings.

A multinomial logistic regression (scikit-learn) is fitted, with almost no regularization (C = 1e4) so it is
over-confident like a deep network (test ECE about 9 %, accuracy about 88 %), on a long-tailed subset of the handwritten digits (rho = 10); its logits on a stratified
held-out share of that subset are the calibration split and its logits on the balanced remaining digits the
test split. Written as ``logits.npz`` in :mod:`datamodules.logits_files`' format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from datamodules.standins.photos import standin_folder

STANDIN_VERSION = 2
PRESETS = {"tiny": {"imbalance": 10.0}, "small": {"imbalance": 10.0}}


def write_logits_standin(out_dir: str | Path, size: str = "small", seed: int = 0) -> Path:
    """Write ``<out_dir>/logits.npz`` (atomically) and return the folder."""
    if size not in PRESETS:
        raise ValueError(f"stand-in size must be one of {sorted(PRESETS)}, got {size!r}")
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    from datamodules.class_subsets import long_tailed_counts, stratified_holdout
    from datamodules.logits_files import save_logits_file

    digits = load_digits()
    features, labels = digits.data / 16.0, digits.target
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    train, test = order[: len(order) // 2], order[len(order) // 2 :]
    counts = long_tailed_counts(int(np.bincount(labels[train]).max()), 10, PRESETS[size]["imbalance"])
    train = np.concatenate([train[labels[train] == c][:n] for c, n in enumerate(counts)])
    kept, held = stratified_holdout(labels[train], 0.3, seed)
    model = LogisticRegression(C=1e4, max_iter=5000).fit(features[train[kept]], labels[train[kept]])

    def logits(index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(model.decision_function(features[index])).float(), torch.from_numpy(
            labels[index]
        )

    description = {
        "layout": "logits",
        "version": STANDIN_VERSION,
        "size": size,
        "seed": seed,
        "source": "logistic regression on long-tailed sklearn digits (rho 10)",
    }
    with standin_folder(Path(out_dir), description) as tmp:
        save_logits_file(tmp / "logits.npz", logits(train[held]), logits(test))
    return Path(out_dir)
