"""The logits file formats of post-hoc calibration, read and written here and nowhere else.

A calibration file holds ``cal_logits``, ``cal_labels``, ``test_logits``, ``test_labels``:

* ``.npz`` with those arrays (what ``save_logits_file`` writes, and a ``PostHocCalibration`` test run leaves);
* ``.pt`` / ``.pth``: a dict with the same keys (tensors or arrays), loaded with ``weights_only=True``;
* ``.p`` / ``.pkl``: the NN_calibration pickles the SCTL paper uses, ``((val_logits, val_labels),
  (test_logits, test_labels))``, read with an unpickler that only admits NumPy arrays.

A file to calibrate at predict holds logits alone (``.npy``, ``.npz`` or ``.pt``). Its own file (as
``idx_files.py`` is for IDX), so the calibration callback and the stand-in writer read the format without a
DataModule.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from datamodules.base import DatasetNotFoundError

KEYS = ("cal_logits", "cal_labels", "test_logits", "test_labels")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles arrays and plain containers, refuses every other class (a pickle can run arbitrary code)."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("builtins", "tuple"),
        ("builtins", "list"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only NumPy arrays are allowed")


def load_logits_file(path: str | Path) -> dict[str, torch.Tensor]:
    """The four arrays of a logits file as tensors (float logits, long labels), checked for shape."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(
            f"data.init_args.path={str(path)!r} is not a file: pass an .npz / .pt / NN_calibration .p file (a "
            "PostHocCalibration test run writes logits.npz in its run folder), or --data.init_args.synthetic true"
        )
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            content = {k: archive[k] for k in archive.files}
    elif suffix in (".pt", ".pth"):
        content = torch.load(path, map_location="cpu", weights_only=True)
    elif suffix in (".p", ".pkl"):
        with open(path, "rb") as handle:
            (cal_logits, cal_labels), (test_logits, test_labels) = _NumpyOnlyUnpickler(
                handle, encoding="latin1"
            ).load()
        content = dict(zip(KEYS, (cal_logits, cal_labels, test_logits, test_labels), strict=True))
    else:
        raise ValueError(f"{path}: unknown logits file type {suffix!r}; expected .npz, .pt or .p")
    missing = [k for k in KEYS if k not in content]
    if missing:
        raise KeyError(f"{path} lacks {missing}; a logits file needs {list(KEYS)}")
    tensors = {k: torch.as_tensor(np.asarray(content[k])) for k in KEYS}
    for split in ("cal", "test"):
        logits, labels = tensors[f"{split}_logits"].float(), tensors[f"{split}_labels"].long().flatten()
        if logits.ndim != 2 or len(logits) != len(labels):
            raise ValueError(
                f"{path}: {split}_logits must be (N, C) with N = len({split}_labels); got {tuple(logits.shape)} and {len(labels)}"
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= logits.shape[1]):
            raise ValueError(
                f"{path}: {split}_labels must lie in [0, {logits.shape[1]}), found {int(labels.min())}..{int(labels.max())}"
            )
        tensors[f"{split}_logits"], tensors[f"{split}_labels"] = logits, labels
    if tensors["cal_logits"].shape[1] != tensors["test_logits"].shape[1]:
        raise ValueError(f"{path}: calibration and test logits have different class counts")
    return tensors


def save_logits_file(
    path: str | Path, cal: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor]
) -> Path:
    """Write an ``.npz`` logits file from (logits, labels) of the calibration and the test split."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = dict(zip(KEYS, (cal[0], cal[1], test[0], test[1]), strict=True))
    np.savez(path, **{k: v.detach().cpu().numpy() for k, v in arrays.items()})
    return path


def load_predict_logits(path: Path, num_classes: int) -> torch.Tensor:
    """(N, ``num_classes``) logits from ``.npy`` (the array), ``.npz`` (its ``logits`` or ``test_logits``) or
    ``.pt`` (a tensor, or a dict with ``logits``); anything else is a one-line error naming the file."""
    key = "data.init_args.predict_dir"
    if not path.is_file():
        raise DatasetNotFoundError(f"{key}={str(path)!r} is not a file of logits (.npy, .npz or .pt)")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        content: Any = np.load(path, allow_pickle=False)
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            name = next((k for k in ("logits", "test_logits") if k in archive.files), None)
            if name is None:
                raise KeyError(f"{path}: no 'logits' (or 'test_logits') array, found {archive.files}")
            content = archive[name]
    elif suffix in (".pt", ".pth"):
        content = torch.load(path, map_location="cpu", weights_only=True)
        content = content.get("logits") if isinstance(content, dict) else content
    else:
        raise ValueError(f"{key}={str(path)!r}: expected a .npy, .npz or .pt file of logits, got {suffix!r}")
    logits = torch.as_tensor(np.asarray(content)).float()
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise ValueError(
            f"{path}: expected (N, {num_classes}) logits (the calibrated model's classes), got {tuple(logits.shape)}"
        )
    return logits
