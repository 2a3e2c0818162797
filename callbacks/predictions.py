"""Predictions to ``predictions.csv`` in the run folder: one row per input."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from lightning_modules.outputs.run_outputs import run_dir


class PredictionCSVWriter(BasePredictionWriter):
    """Write what ``predict_step`` returns, a dict of equal-length columns, as CSV rows as batches arrive.

    Columns are the dict's keys (e.g. ``path, fake_prob, pred_label``). Each rank appends to its own file;
    rank 0 joins them into ``predictions.csv`` at the end, so memory stays flat whatever the number of inputs.
    ``output_dir`` defaults to the run folder.
    """

    def __init__(self, output_dir: str | None = None, filename: str = "predictions.csv") -> None:
        super().__init__(write_interval="batch")
        self.output_dir = output_dir
        self.filename = filename
        self._columns: list[str] | None = None

    def _folder(self, trainer: L.Trainer) -> Path:
        return Path(self.output_dir) if self.output_dir else run_dir(trainer)

    def _part(self, trainer: L.Trainer) -> Path:
        return self._folder(trainer) / f".{self.filename}.rank{trainer.global_rank}"

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._folder(trainer).mkdir(parents=True, exist_ok=True)
        self._part(trainer).unlink(missing_ok=True)
        self._columns = None

    def write_on_batch_end(
        self, trainer, pl_module, prediction: Any, batch_indices, batch, batch_idx, dataloader_idx
    ) -> None:
        if not isinstance(prediction, dict):
            raise TypeError(
                f"PredictionCSVWriter needs predict_step to return a dict of columns, got {type(prediction).__name__}"
            )
        columns = {key: _as_list(value) for key, value in prediction.items()}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(
                f"predict_step columns differ in length: { {k: len(v) for k, v in columns.items()} }"
            )
        with open(self._part(trainer), "a", newline="") as handle:
            writer = csv.writer(handle)
            if self._columns is None:
                self._columns = list(columns)
                writer.writerow(self._columns)
            writer.writerows(zip(*(columns[k] for k in self._columns), strict=True))

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.strategy.barrier()
        if not trainer.is_global_zero:
            return
        parts = [self._folder(trainer) / f".{self.filename}.rank{r}" for r in range(trainer.world_size)]
        target = self._folder(trainer) / self.filename
        with open(target, "w", newline="") as out:
            header_written = False
            for part in parts:
                if not part.exists():
                    continue
                lines = part.read_text().splitlines(keepends=True)
                if lines and not header_written:
                    out.write(lines[0])
                    header_written = True
                out.writelines(lines[1:])
                part.unlink()
        pl_module.print(f"predictions written to {target}")


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return [round(v, 6) if isinstance(v, float) else v for v in value.tolist()]
    return list(value)
