"""Export a trained model to ONNX: the same ``--config`` files and ``--ckpt_path`` as ``predict``, one ``.onnx`` file.

    python scripts/export.py --config configs/bihpf.yaml --ckpt_path runs/bihpf/version_0/checkpoints/last.ckpt
    python scripts/export.py --config configs/patchcore_mvtec.yaml --ckpt_path <file> --out patchcore.onnx --check

The model is restored the way ``predict`` restores it (Lightning loads the checkpoint and every callback's state,
so a fitted calibrator or a PatchCore memory bank is in), one predict batch is drawn from the datamodule as the
example input (``predict_dir`` or the test split; where neither is here, inputs of the trained size made up for
tracing: exporting needs no data), and the routine's ``predict_scores`` is exported
(``lightning_modules/outputs/export.py``): ``<out>.onnx``, any batch size, plus ``<out>.json`` with the inputs, the
pre-processing, the outputs and the thresholds. ``--check`` runs the file through onnxruntime on one input and on
an odd-sized batch and prints the largest relative difference from ``predict``'s own scores. Default ``--out``:
``model.onnx`` in the checkpoint's run folder. A model whose scores no single graph can give (the video
detectors) is refused in one line, as is every other mistake (``RVL_TRACEBACK=1`` shows the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from lightning.pytorch.callbacks import Callback

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import cli  # noqa: E402
from datamodules.base import DatasetNotFoundError  # noqa: E402
from lightning_modules.components.backbones import weights_from_checkpoint  # noqa: E402
from lightning_modules.outputs.export import export_onnx, run_onnx  # noqa: E402
from lightning_modules.outputs.user_errors import one_line_errors  # noqa: E402


class _FirstBatch(Callback):
    """Keeps the first predict batch (on the model's device) and stops after it."""

    batch: dict[str, Any] | None = None

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if self.batch is None:
            self.batch = batch


class ExportError(ValueError):
    """The model cannot be exported as asked; the message says why."""


def restored(cli_args: list[str], ckpt_path: str) -> tuple[Any, Any, dict[str, Any]]:
    """(model, datamodule, an example batch) as ``predict --ckpt_path`` would have them; where the datamodule has
    no input to draw (no ``predict_dir``, no data on this machine), the example is made up at the trained size."""
    scratch = tempfile.mkdtemp(prefix="rvl_export_")  # predict's own files (config, predictions) go here
    try:
        overlay = trained_config(Path(ckpt_path))
        refuse_what_no_graph_gives(overlay.get("model", {}).get("class_path"))  # before any data is read
        as_trained = Path(scratch) / "as_trained.yaml"
        as_trained.write_text(yaml.safe_dump(overlay))
        configs = [i for i, a in enumerate(cli_args) if a in ("--config", "-c")]
        at = configs[-1] + 2 if configs else 0  # after the config files, before what the command line gives
        arguments = [*cli_args[:at], "--config", str(as_trained), *cli_args[at:]]
        with warnings.catch_warnings(), weights_from_checkpoint():  # the checkpoint holds every weight
            warnings.simplefilter(
                "ignore", UserWarning
            )  # LightningCLI's note that args and sys.argv both exist
            built = cli.main(
                [*arguments, "--trainer.logger", "false", "--trainer.default_root_dir", scratch], run=False
            )
        keeper = _FirstBatch()
        built.trainer.callbacks.append(keeper)
        built.trainer.limit_predict_batches = 1
        try:
            built.trainer.predict(
                built.model, datamodule=built.datamodule, ckpt_path=ckpt_path, return_predictions=False
            )
        except DatasetNotFoundError:  # nothing to draw an input from: load the weights alone, make one up
            built.model.load_state_dict(
                torch.load(ckpt_path, map_location="cpu", weights_only=True)["state_dict"]
            )
            keeper.batch = made_up_batch(built.model, built.datamodule)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if keeper.batch is None:
        raise ExportError("the datamodule's predict loader gave no batch to export with")
    return built.model.eval(), built.datamodule, keeper.batch  # predict puts training mode back


def refuse_what_no_graph_gives(class_path: str | None) -> None:
    """One line, before anything is built, for a model whose ``export_refusal`` says why it is not exported."""
    if not class_path:
        return
    module, _, name = class_path.rpartition(".")
    refusal = getattr(getattr(importlib.import_module(module), name), "export_refusal", "")
    if refusal:
        raise ExportError(f"{name} is not exported: {refusal}")


def trained_config(path: Path) -> dict[str, Any]:
    """A config overlay of the model a checkpoint holds (its class and hyper-parameters, as ``predict
    --ckpt_path`` rebuilds it) and the image size it was trained at."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    class_path = hparams.pop("_class_path", None)
    init_args = {k: v for k, v in hparams.items() if not k.startswith("_") and k not in cli.LINKED_FROM_DATA}
    overlay: dict[str, Any] = (
        {"model": {"class_path": class_path, "init_args": init_args}} if class_path else {}
    )
    if "image_size" in (checkpoint.get("trained_on") or {}):
        overlay["data"] = {"init_args": {"image_size": checkpoint["trained_on"]["image_size"]}}
    return overlay


def made_up_batch(model: Any, data: Any, size: int = 2) -> dict[str, Any]:
    """Inputs of the shapes the model was trained on (zeros): all tracing needs."""
    side = int(getattr(data, "image_size", 224))
    shapes = {"image": (size, 3, side, side), "depth": (size, 1, side, side)}
    if "logits" in model.export_input_keys:
        shapes["logits"] = (size, int(model.num_classes))
    missing = [key for key in model.export_input_keys if key not in shapes]
    if missing:
        raise ExportError(
            f"no example of {missing} to export with: pass --data.init_args.predict_dir <inputs>"
        )
    return {key: torch.zeros(shapes[key]) for key in model.export_input_keys}


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt_path", required=True, help="the checkpoint file to export")
    parser.add_argument("--out", type=Path, help="the .onnx file (default: model.onnx in the run folder)")
    parser.add_argument("--check", action="store_true", help="compare onnxruntime with predict's scores")
    args, cli_args = parser.parse_known_args(argv)
    checkpoint = Path(args.ckpt_path)
    if not checkpoint.is_file():
        raise SystemExit(f"error: --ckpt_path {checkpoint}: no such checkpoint file")
    model, data, batch = restored(cli_args, str(checkpoint))
    out = args.out or checkpoint.parent.parent / "model.onnx"
    preprocessing = data.preprocessing() if hasattr(data, "preprocessing") else []
    export_onnx(
        model.cpu(), {k: v.cpu() if torch.is_tensor(v) else v for k, v in batch.items()}, out, preprocessing
    )
    print(
        f"exported {type(model).__name__} to {out} (inputs {', '.join(model.export_input_keys)}; {out.with_suffix('.json')} describes them)"
    )
    if args.check:
        print(
            f"onnxruntime vs predict: largest relative difference {largest_difference(model, batch, out):.2e} "
            "(one input, and an odd-sized batch)"
        )
    return out


def largest_difference(model: Any, batch: dict[str, Any], path: Path) -> float:
    """The largest max |onnx - torch| / max |torch| (relative to each output's scale), on the batch's first input
    alone and on an odd-sized batch (its inputs repeated to 3): the file takes any batch size."""
    inputs = {k: batch[k].float().cpu() for k in model.export_input_keys}
    one = {k: v[:1] for k, v in inputs.items()}
    odd = {k: v.repeat(3, *[1] * (v.dim() - 1))[:3] for k, v in inputs.items()}
    worst = 0.0
    for example in (one, odd):
        with torch.no_grad():
            expected = model.predict_scores(example)
        got = run_onnx(path, example, model.export_input_keys)
        for name, value in expected.items():
            reference = value.float().cpu().numpy()
            scale = max(float(np.max(np.abs(reference))), 1e-12)
            worst = max(worst, float(np.max(np.abs(got[name] - reference))) / scale)
    return worst


def run_from_command_line(argv: list[str] | None = None) -> int:
    """``main`` as the shell runs it: a mistake a user can fix is one line on stderr and exit status 1."""
    return one_line_errors(lambda: main(argv), (*cli.USER_ERRORS, ExportError, cli.CheckpointNotFoundError))


if __name__ == "__main__":
    sys.exit(run_from_command_line())
