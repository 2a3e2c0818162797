"""Precomputed logits for post-hoc calibration: fit on one split, evaluate on another, no network needed.

Accepted files:

* ``.npz`` with arrays ``cal_logits``, ``cal_labels``, ``test_logits``, ``test_labels``;
* ``.pt`` / ``.pth``: a dict with the same keys (tensors or arrays), loaded with ``weights_only=True``;
* ``.p`` / ``.pkl``: the NN_calibration pickles the SCTL paper uses, ``((val_logits, val_labels),
  (test_logits, test_labels))``, read with an unpickler that only admits NumPy arrays.

Batches are ``{"logits": (B, C), "label": (B,)}``; ``calibration_dataloader()`` serves the calibration split.
``scripts/export_logits.py`` writes such a file from any trained classifier run.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from datamodules.base import BaseDataModule, DatasetNotFoundError
from datamodules.standins.logits import STANDIN_VERSION as LOGITS_STANDIN_VERSION
from datamodules.standins.logits import write_logits_standin

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


class _DictDataset(TensorDataset):
    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        logits, label = super().__getitem__(index)
        return {"logits": logits, "label": label}


class _PredictRows(Dataset):
    """A user's logits to calibrate, a row each: ``path`` is ``<file>#<row>``, ``label`` -1."""

    def __init__(self, logits: torch.Tensor, file: Path) -> None:
        self.logits, self.file = logits, file

    def __len__(self) -> int:
        return len(self.logits)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"logits": self.logits[index], "label": -1, "path": f"{self.file}#{index}"}


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


class LogitsDataModule(BaseDataModule):
    """Calibration and test logits from a file (see the module docstring for the formats).

    Args:
        path: The logits file; with ``synthetic: true`` the stand-in's ``logits.npz`` is used instead.
        **kwargs: The shared arguments of :class:`~datamodules.base.BaseDataModule` (``batch_size`` is logits per
            batch; calibrators are fitted on the whole split at once regardless; image arguments are unused).
            ``predict_dir`` is a file of your logits to calibrate (:func:`load_predict_logits`), a row each.
    """

    layout = "logits"
    standin_version = LOGITS_STANDIN_VERSION
    # fit on logits means fitting the calibrator: training and validation read the calibration split
    loader_splits = {"train": "cal", "val": "cal", "test": "test", "predict": "test"}

    def __init__(self, path: str = "logits.npz", **kwargs: Any) -> None:
        kwargs.setdefault("batch_size", 4096)
        kwargs.setdefault("num_workers", 0)
        super().__init__(**kwargs)
        self.path = path
        self._tensors: dict[str, torch.Tensor] | None = None

    def write_standin(self, out_dir: Path) -> None:
        write_logits_standin(out_dir, size=self.standin_size, seed=self.seed)

    def check_data_present(self) -> None:
        load_logits_file(self.path)

    @property
    def file(self) -> Path:
        return self.data_dir / "logits.npz" if self.synthetic else Path(self.path)

    @property
    def tensors(self) -> dict[str, torch.Tensor]:
        if self._tensors is None:
            if self.synthetic:  # the CLI asks for num_classes before prepare_data runs
                self.prepare_data()
            self._tensors = load_logits_file(self.file)
        return self._tensors

    @property
    def num_classes(self) -> int:
        return int(self.tensors["test_logits"].shape[1])

    def _loader(self, split: str) -> DataLoader:
        dataset = _DictDataset(self.tensors[f"{split}_logits"], self.tensors[f"{split}_labels"])
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=False, num_workers=0)

    def loader(self, stage: str) -> DataLoader:
        """In order, in memory, for every stage (the base's train/val/test/predict loaders call this)."""
        return self._loader(self.loader_splits[stage])

    def calibration_dataloader(self) -> DataLoader:
        return self._loader("cal")

    def predict_dataloader(self) -> DataLoader:
        """``predict_dir``'s logits when given (calibrated by the run's calibrator), else the test split."""
        if not self.predict_dir:
            return self.loader("predict")
        file = Path(self.predict_dir)
        dataset = _PredictRows(load_predict_logits(file, self.num_classes), file)
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=False, num_workers=0)
