"""Precomputed logits for post-hoc calibration: fit on one split, evaluate on another, no network needed.

``path`` is a logits file in one of the formats of ``logits_files.py`` (an ``.npz``, a ``.pt`` dict, or an
NN_calibration pickle as the SCTL paper uses); a ``PostHocCalibration`` test run writes one (``logits.npz``) from
any trained classifier. Batches are ``{"logits": (B, C), "label": (B,)}``; ``calibration_dataloader()`` serves the
calibration split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from datamodules.base import BaseDataModule
from datamodules.logits_files import load_logits_file, load_predict_logits
from datamodules.standins.logits import STANDIN_VERSION as LOGITS_STANDIN_VERSION
from datamodules.standins.logits import write_logits_standin


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
