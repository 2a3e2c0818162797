"""Predictions to ``predictions.csv`` in the run folder, one row per input; a later predict into the same folder
writes ``predictions_2.csv`` (and its pictures into ``predictions_2/``), so nothing an earlier one wrote is lost."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from lightning_modules.outputs.run_outputs import next_predictions, run_dir


class PredictionCSVWriter(BasePredictionWriter):
    """Write what ``predict_step`` returns, a dict of equal-length columns, as CSV rows as batches arrive.

    Columns are the dict's keys (e.g. ``path, fake_prob, pred_label``). Each rank appends to its own file;
    rank 0 joins them into the CSV at the end, so memory stays flat whatever the number of inputs. ``output_dir``
    defaults to the run folder. ``target`` is this predict's CSV and ``pictures`` the folder beside it for what a
    routine draws per input (``predictions/`` for ``predictions.csv``). A predict that stops before the end of its
    data (``trainer.limit_predict_batches``) says so in one line.
    """

    def __init__(self, output_dir: str | None = None, filename: str = "predictions.csv") -> None:
        super().__init__(write_interval="batch")
        self.output_dir = output_dir
        self.filename = filename
        self._columns: list[str] | None = None
        self.target: Path | None = None

    @property
    def pictures(self) -> Path | None:
        return self.target.with_suffix("") if self.target is not None else None

    def _folder(self, trainer: L.Trainer) -> Path:
        return Path(self.output_dir) if self.output_dir else run_dir(trainer)

    def _part(self, trainer: L.Trainer) -> Path:
        return self._folder(trainer) / f".{self.target.name}.rank{trainer.global_rank}"

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        folder = self._folder(trainer)
        folder.mkdir(parents=True, exist_ok=True)
        # rank 0 chooses the free name, every rank writes its part under it
        self.target = trainer.strategy.broadcast(next_predictions(folder, Path(self.filename).stem))
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
        parts = [self._folder(trainer) / f".{self.target.name}.rank{r}" for r in range(trainer.world_size)]
        target = self.target
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
        if stopped := stopped_early(trainer):
            pl_module.print(stopped)


def stopped_early(trainer: L.Trainer) -> str:
    """One line when predict scored fewer batches than its data holds (``limit_predict_batches``), else ''."""
    loaders = trainer.predict_dataloaders
    loaders = loaders if isinstance(loaders, list | tuple) else [loaders]
    scored = trainer.num_predict_batches
    total = [len(loader) for loader in loaders]
    if sum(scored) >= sum(total):
        return ""
    return (
        f"predict stopped early: {sum(scored)} of the data's {sum(total)} batches scored "
        f"(trainer.limit_predict_batches={trainer.limit_predict_batches}; 1.0 scores everything)"
    )


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return [round(v, 6) if isinstance(v, float) else v for v in value.tolist()]
    return list(value)
