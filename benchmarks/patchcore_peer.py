"""One side of the PatchCore row of ``make bench-peers``, run in a process of its own so that its peak memory is
its own: fit PatchCore on one category of an MVTec-layout folder with a given ResNet-18 state dict, test it, and
print one JSON line (fit seconds, peak RSS after the fit, memory-bank size, image and pixel AUROC in %, and how
far the peak rose in each phase of the fit: where the memory goes).

    python benchmarks/patchcore_peer.py ours --root DIR --category brick --weights W.pth --out DIR
    <anomalib venv>/bin/python benchmarks/patchcore_peer.py anomalib --root DIR --category brick --weights W.pth --out DIR

Both sides get the same images at 128 px (resized, no crop), the same frozen ResNet-18 weights, layers 2 and 3,
a 10 % coreset, 9 neighbours for the image score, batch 16, 2 loader workers, and the validation each runs by
default during its fit (on the test images, both), and are timed around their own library's fit call
(``Trainer.fit`` of what ``cli.py`` built for ours, ``Engine.fit`` for anomalib; parsing the config and building
the model stay outside, as anomalib's constructors do). The anomalib side imports nothing of this repository's code under test: it
runs in anomalib's venv, with anomalib's pinned versions (its one import from here, ``process_memory.py``, is
standard library only).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

try:
    from benchmarks.process_memory import peak_rss_mib
except ImportError:  # run as a script in anomalib's venv: this folder is on the path, the repository is not
    from process_memory import peak_rss_mib

REPO = Path(__file__).resolve().parents[1]
SIZE = 128


PHASES = ("start-up", "training batches", "coreset", "validation batches", "rest of the fit")


def phase_peaks():
    """A Lightning callback that reads this process's peak RSS at each boundary of the fit's phases: start-up
    (imports, model and data built; up to ``on_fit_start``), the training batches (features extracted and kept),
    the coreset (from the callbacks' ``on_validation_start``, which Lightning calls before the module's, where both
    PatchCores build their bank, to the first validation batch), the validation batches (scores and metrics), and
    the rest of the fit (epoch end, checkpoint). The sanity check before training is not a phase. ``rises``:
    phase -> MiB the peak rose in it, so the phase that set the peak shows; a peak only rises, so nothing between
    two readings is missed."""
    from lightning.pytorch import Callback

    class PhasePeaks(Callback):
        def __init__(self) -> None:
            self.readings: dict[str, float] = {}

        def mark(self, trainer, phase: str) -> None:
            if not trainer.sanity_checking:
                self.readings.setdefault(phase, peak_rss_mib())

        def on_fit_start(self, trainer, pl_module) -> None:
            self.mark(trainer, "start-up")

        def on_validation_start(self, trainer, pl_module) -> None:
            self.mark(trainer, "training batches")

        def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
            self.mark(trainer, "coreset")

        def on_validation_end(self, trainer, pl_module) -> None:
            self.mark(trainer, "validation batches")

        def on_fit_end(self, trainer, pl_module) -> None:
            self.mark(trainer, "rest of the fit")

        @property
        def rises(self) -> dict[str, float]:
            before, rises = 0.0, {}
            for phase in PHASES:
                if phase in self.readings:
                    rises[phase] = self.readings[phase] - before
                    before = self.readings[phase]
            return rises

    return PhasePeaks()


def ours(root: str, category: str, weights: str, out: str) -> dict[str, float]:
    """Our PatchCore through ``cli.py``, as a user runs it: the MVTec config and the demo overlay (128 px, CPU)."""
    sys.path.insert(0, str(REPO))
    import torch

    import cli
    from lightning_modules.outputs.tables import read_result_table

    arguments = [
        *("--config", str(REPO / "configs/patchcore_mvtec.yaml")),
        *("--config", str(REPO / "configs/demo_anomaly.yaml")),
        *("--data.init_args.root", root, "--data.init_args.synthetic", "false"),
        *("--data.init_args.category", category),
        *("--model.init_args.pretrained_path", weights, "--seed_everything", "0"),
        *("--run_name", "patchcore_peer", "--runs_dir", out, "--trainer.enable_progress_bar", "false"),
    ]
    built = cli.main(arguments, run=False)  # config parsed, model, data and trainer built: anomalib's are too
    phases = phase_peaks()
    built.trainer.callbacks.append(phases)
    started = time.perf_counter()
    built.trainer.fit(built.model, datamodule=built.datamodule)
    fit_seconds = time.perf_counter() - started
    rss = peak_rss_mib()
    cli.main(["test", *arguments, "--ckpt_path", "last"])
    run = sorted((Path(out) / "patchcore_peer").glob("version_*"), key=lambda p: p.stat().st_mtime)[-1]
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)[
        "state_dict"
    ]
    bank = next(v for k, v in state.items() if k.endswith("memory_bank"))
    row = next(r for r in read_result_table(run / "results.csv") if r["group"] == "all")
    return {
        "fit_seconds": fit_seconds,
        "peak_rss_mib": rss,
        "peak_rise_mib": phases.rises,
        "bank": int(bank.shape[0]),
        "image_auroc": float(row["image_auroc"]),
        "pixel_auroc": float(row["pixel_auroc"]),
    }


def anomalib_side(root: str, category: str, weights: str, out: str) -> dict[str, float]:
    """anomalib's ``Patchcore`` with its ``MVTecAD`` datamodule and ``Engine``, the same sizes and weights."""
    import torch
    from anomalib.data import MVTecAD
    from anomalib.engine import Engine
    from anomalib.models import Patchcore

    torch.manual_seed(0)
    model = Patchcore(
        backbone="resnet18",
        layers=("layer2", "layer3"),
        pre_trained=False,
        coreset_sampling_ratio=0.1,
        num_neighbors=9,
        pre_processor=Patchcore.configure_pre_processor(image_size=(SIZE, SIZE)),
        visualizer=False,
    )
    extractor = model.model.feature_extractor.feature_extractor
    missing, _ = extractor.load_state_dict(torch.load(weights, map_location="cpu"), strict=False)
    if missing:
        raise SystemExit(f"{weights}: anomalib's ResNet-18 lacks weights for {missing[:3]}")
    data = MVTecAD(
        root=root,
        category=category,
        train_batch_size=16,
        eval_batch_size=16,
        num_workers=2,
    )
    phases = phase_peaks()
    engine = Engine(
        accelerator="cpu", devices=1, default_root_dir=out, enable_progress_bar=False, callbacks=[phases]
    )
    started = time.perf_counter()
    engine.fit(model=model, datamodule=data)
    fit_seconds = time.perf_counter() - started
    rss = peak_rss_mib()
    metrics = engine.test(model=model, datamodule=data)[0]
    return {
        "fit_seconds": fit_seconds,
        "peak_rss_mib": rss,
        "peak_rise_mib": phases.rises,
        "bank": int(model.model.memory_bank.shape[0]),
        "image_auroc": 100 * float(metrics["image_AUROC"]),
        "pixel_auroc": 100 * float(metrics["pixel_AUROC"]),
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("side", choices=("ours", "anomalib"))
    parser.add_argument(
        "--root", required=True, help="an MVTec-layout folder (<root>/<category>/train/good ...)"
    )
    parser.add_argument("--category", required=True)
    parser.add_argument("--weights", required=True, help="a timm ResNet-18 state dict (.pth)")
    parser.add_argument("--out", required=True, help="a scratch folder for the run")
    args = parser.parse_args(argv)
    side = ours if args.side == "ours" else anomalib_side
    result = side(args.root, args.category, args.weights, args.out)
    print("PEER_RESULT " + json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
