"""Export a trained model to ONNX: the same ``--config`` files and ``--ckpt_path`` as ``predict``, one ``.onnx`` file.

    python scripts/export.py --config configs/bihpf.yaml --ckpt_path runs/bihpf/version_0/checkpoints/last.ckpt
    python scripts/export.py --config configs/patchcore_mvtec.yaml --ckpt_path <file> --out patchcore.onnx --check

The model is restored the way ``predict`` restores it (Lightning loads the checkpoint and every callback's state,
so a fitted calibrator or a PatchCore memory bank is in), one predict batch is drawn from the datamodule as the
example input, and the routine's ``predict_scores`` is exported (``lightning_modules/outputs/export.py``):
``<out>.onnx`` plus ``<out>.json`` with the inputs, the pre-processing, the outputs and the thresholds.
``--check`` runs the file through onnxruntime on that batch and prints the largest relative difference from
``predict``'s own scores. Default ``--out``: ``model.onnx`` in the checkpoint's run folder.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import cli  # noqa: E402
from lightning_modules.outputs.export import export_onnx, run_onnx  # noqa: E402


class _FirstBatch(Callback):
    """Keeps the first predict batch (on the model's device) and stops after it."""

    batch: dict[str, Any] | None = None

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if self.batch is None:
            self.batch = batch


def restored(cli_args: list[str], ckpt_path: str) -> tuple[Any, Any, dict[str, Any]]:
    """(model, datamodule, an example batch) as ``predict --ckpt_path`` would have them."""
    scratch = tempfile.mkdtemp(prefix="rvl_export_")  # predict's own files (config, predictions) go here
    try:
        built = cli.main(
            [*cli_args, "--trainer.logger", "false", "--trainer.default_root_dir", scratch], run=False
        )
        keeper = _FirstBatch()
        built.trainer.callbacks.append(keeper)
        built.trainer.limit_predict_batches = 1
        built.trainer.predict(
            built.model, datamodule=built.datamodule, ckpt_path=ckpt_path, return_predictions=False
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if keeper.batch is None:
        raise ValueError("the datamodule's predict loader gave no batch to export with")
    return built.model.eval(), built.datamodule, keeper.batch  # predict puts training mode back


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
    transform = repr(data.eval_transform()) if hasattr(data, "eval_transform") else ""
    export_onnx(
        model.cpu(), {k: v.cpu() if torch.is_tensor(v) else v for k, v in batch.items()}, out, transform
    )
    print(
        f"exported {type(model).__name__} to {out} (inputs {', '.join(model.export_input_keys)}; {out.with_suffix('.json')} describes them)"
    )
    if args.check:
        print(
            f"onnxruntime vs predict: largest relative difference {largest_difference(model, batch, out):.2e}"
        )
    return out


def largest_difference(model: Any, batch: dict[str, Any], path: Path) -> float:
    """The largest max |onnx - torch| / max |torch| (relative to each output's scale) on ``batch``."""
    with torch.no_grad():
        expected = model.predict_scores({k: batch[k].float().cpu() for k in model.export_input_keys})
    got = run_onnx(path, batch, model.export_input_keys)
    worst = 0.0
    for name, value in expected.items():
        reference = value.float().cpu().numpy()
        scale = max(float(np.max(np.abs(reference))), 1e-12)
        worst = max(worst, float(np.max(np.abs(got[name] - reference))) / scale)
    return worst


if __name__ == "__main__":
    main()
