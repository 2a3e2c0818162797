"""One side of the PatchCore row of ``make bench-peers``, run in a process of its own so that its peak memory is
its own: fit PatchCore on one category of an MVTec-layout folder with a given timm state dict, score the test
images, and print one JSON line (fit seconds, peak RSS after the fit, memory-bank size, the coreset's projection
dimension, image and pixel AUROC in %, and how far the peak rose in each phase of the fit: where the memory goes).

    python benchmarks/patchcore_peer.py ours --root DIR --category brick --weights W.pth --out DIR ...
    <anomalib venv>/bin/python benchmarks/patchcore_peer.py anomalib --root DIR ...
    <official venv>/bin/python benchmarks/patchcore_peer.py official --code <patchcore-inspection> --root DIR ...

All sides get the same images at 128 px (resized, no crop), the same frozen backbone weights (one file) and
layers, the backbone's own normalization, a 10 % coreset whose distances use a random projection of the same
dimension (anomalib's own Johnson-Lindenstrauss choice for that many patches, ``coreset_projection_dim``, given
to the other two), batch 16, 2 loader workers, and are timed around the same work: ours and anomalib's fit call
(``Trainer.fit`` of what ``cli.py`` built, ``Engine.fit``; each runs its validation over the test images
inside it), the official code's ``fit`` plus its ``predict`` over the same test images. Building the model and
the data stays outside, as anomalib's constructors do. Neither peer side imports this repository's code under
test: each runs in its own venv with its own pinned versions (their one import from here,
``process_memory.py``, is standard library only).
"""

from __future__ import annotations

import argparse
import json
import math
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


def peak_rises(readings: dict[str, float]) -> dict[str, float]:
    """Phase -> MiB the peak RSS rose in it, from the peak read at the end of each phase (phases not read are
    left out): the phase that set the peak shows."""
    before, rises = 0.0, {}
    for phase in PHASES:
        if phase in readings:
            rises[phase], before = readings[phase] - before, readings[phase]
    return rises


CORESET_RATIO = 0.1


def coreset_projection_dim(patches: int, eps: float = 0.9) -> int:
    """The dimension anomalib's coreset projects ``patches`` features to: the Johnson-Lindenstrauss bound
    4 ln(n) / (eps^2 / 2 - eps^3 / 3) at its eps = 0.9, truncated (10,240 patches: 228)."""
    return int(4 * math.log(patches) / (eps**2 / 2 - eps**3 / 3))


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
            return peak_rises(self.readings)

    return PhasePeaks()


def ours(args: argparse.Namespace) -> dict:
    """Our PatchCore through ``cli.py``, as a user runs it: the MVTec config and the demo overlay (128 px, CPU)."""
    sys.path.insert(0, str(REPO))
    import torch

    import cli
    from lightning_modules.outputs.tables import read_result_table

    arguments = [
        *("--config", str(REPO / "configs/patchcore_mvtec.yaml")),
        *("--config", str(REPO / "configs/demo_anomaly.yaml")),
        *("--data.init_args.root", args.root, "--data.init_args.synthetic", "false"),
        *("--data.init_args.category", args.category),
        *("--model.init_args.backbone", args.backbone, "--model.init_args.pretrained_path", args.weights),
        *("--model.init_args.layers", f"[{args.layer_indices}]"),
        *("--model.init_args.coreset_ratio", str(CORESET_RATIO)),
        *("--model.init_args.projection_dim", str(args.projection_dim), "--seed_everything", "0"),
        *("--run_name", "patchcore_peer", "--runs_dir", args.out, "--trainer.enable_progress_bar", "false"),
    ]
    built = cli.main(arguments, run=False)  # config parsed, model, data and trainer built: anomalib's are too
    phases = phase_peaks()
    built.trainer.callbacks.append(phases)
    started = time.perf_counter()
    built.trainer.fit(built.model, datamodule=built.datamodule)
    fit_seconds = time.perf_counter() - started
    rss = peak_rss_mib()
    run = Path(built.trainer.log_dir)
    checkpoint = run / "checkpoints" / "last.ckpt"
    cli.main(["test", *arguments, "--ckpt_path", str(checkpoint)])
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    bank = next(v for k, v in saved["state_dict"].items() if k.endswith("memory_bank"))
    row = next(r for r in read_result_table(run / "results.csv") if r["group"] == "all")
    return {
        "fit_seconds": fit_seconds,
        "peak_rss_mib": rss,
        "peak_rise_mib": phases.rises,
        "images": len(built.datamodule.train_dataloader().dataset),
        "bank": int(bank.shape[0]),
        "projection_dim": int(saved["hyper_parameters"]["projection_dim"]),
        "image_auroc": float(row["image_auroc"]),
        "pixel_auroc": float(row["pixel_auroc"]),
    }


def anomalib_side(args: argparse.Namespace) -> dict:
    """anomalib's ``Patchcore`` with its ``MVTecAD`` datamodule and ``Engine``, the same sizes and weights; its
    pre-processor given the backbone's normalization. anomalib chooses its coreset projection itself: the side
    reports the dimension its projection used."""
    import torch
    from anomalib.data import MVTecAD
    from anomalib.engine import Engine
    from anomalib.models import Patchcore
    from anomalib.models.components.dimensionality_reduction import random_projection
    from anomalib.pre_processing import PreProcessor
    from torchvision.transforms import v2

    projections: list[int] = []
    fit = random_projection.SparseRandomProjection.fit

    def recording_fit(self, embedding):
        fitted = fit(self, embedding)
        projections.append(int(self.n_components))
        return fitted

    random_projection.SparseRandomProjection.fit = recording_fit
    torch.manual_seed(0)
    transform = v2.Compose([v2.Resize((SIZE, SIZE), antialias=True), v2.Normalize(args.mean, args.std)])
    model = Patchcore(
        backbone=args.backbone,
        layers=tuple(args.layers.split(",")),
        pre_trained=False,
        coreset_sampling_ratio=CORESET_RATIO,
        num_neighbors=9,
        pre_processor=PreProcessor(transform=transform),
        visualizer=False,
    )
    extractor = model.model.feature_extractor.feature_extractor
    missing, _ = extractor.load_state_dict(torch.load(args.weights, map_location="cpu"), strict=False)
    if missing:
        raise SystemExit(f"{args.weights}: anomalib's {args.backbone} lacks weights for {missing[:3]}")
    data = MVTecAD(
        root=args.root, category=args.category, train_batch_size=16, eval_batch_size=16, num_workers=2
    )
    phases = phase_peaks()
    engine = Engine(
        accelerator="cpu", devices=1, default_root_dir=args.out, enable_progress_bar=False, callbacks=[phases]
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
        "images": len(data.train_data),
        "bank": int(model.model.memory_bank.shape[0]),
        "projection_dim": projections[-1],
        "image_auroc": 100 * float(metrics["image_AUROC"]),
        "pixel_auroc": 100 * float(metrics["pixel_AUROC"]),
    }


def official_side(args: argparse.Namespace) -> dict:
    """amazon-science/patchcore-inspection from a checkout (``--code``): its ``MVTecDataset`` (resize and
    center-crop to 128 px, the backbone's normalization in place of its ImageNet one), its ``PatchCore.load``
    with the timm backbone object, the same layers, its default 1,024-dimensional patch embedding, an
    ``ApproximateGreedyCoresetSampler`` at the shared ratio and projection dimension, one nearest neighbour for
    the score (its default) and FAISS on the CPU with 2 threads. Timed: ``fit`` on the training images plus
    ``predict`` on the test images (the validation pass the other two run inside their fit)."""
    sys.path.insert(0, str(Path(args.code) / "src"))
    import numpy as np
    import timm
    import torch
    from patchcore import common, metrics, sampler
    from patchcore import patchcore as official
    from patchcore.datasets import mvtec
    from torchvision import transforms

    torch.manual_seed(0)
    backbone = timm.create_model(args.backbone, pretrained=False)
    backbone.load_state_dict(torch.load(args.weights, map_location="cpu"))
    splits = {}
    for split in (mvtec.DatasetSplit.TRAIN, mvtec.DatasetSplit.TEST):
        dataset = mvtec.MVTecDataset(args.root, args.category, resize=SIZE, imagesize=SIZE, split=split)
        dataset.transform_img.transforms[-1] = transforms.Normalize(args.mean, args.std)
        splits[split] = torch.utils.data.DataLoader(dataset, batch_size=16, num_workers=2)
    device = torch.device("cpu")
    coreset = sampler.ApproximateGreedyCoresetSampler(
        CORESET_RATIO, device, dimension_to_project_features_to=args.projection_dim
    )
    readings: dict[str, float] = {}
    run = coreset.run

    def marked_run(features):  # its features are all extracted here, and its bank is chosen when this returns
        readings["training batches"] = peak_rss_mib()
        chosen = run(features)
        readings["coreset"] = peak_rss_mib()
        return chosen

    coreset.run = marked_run
    model = official.PatchCore(device)
    model.load(
        backbone=backbone,
        layers_to_extract_from=args.layers.split(","),
        device=device,
        input_shape=(3, SIZE, SIZE),
        pretrain_embed_dimension=1024,
        target_embed_dimension=1024,
        patchsize=3,
        anomaly_score_num_nn=1,
        featuresampler=coreset,
        nn_method=common.FaissNN(False, 2),
    )
    readings["start-up"] = peak_rss_mib()
    started = time.perf_counter()
    model.fit(splits[mvtec.DatasetSplit.TRAIN])
    scores, masks, labels, true_masks = model.predict(splits[mvtec.DatasetSplit.TEST])
    fit_seconds = time.perf_counter() - started
    rss = readings["validation batches"] = peak_rss_mib()
    pixel = metrics.compute_pixelwise_retrieval_metrics(np.stack(masks), np.stack(true_masks)[:, 0])
    return {
        "fit_seconds": fit_seconds,
        "peak_rss_mib": rss,
        "peak_rise_mib": peak_rises(readings),
        "images": len(splits[mvtec.DatasetSplit.TRAIN].dataset),
        "bank": int(model.anomaly_scorer.detection_features.shape[0]),
        "projection_dim": int(coreset.dimension_to_project_features_to),
        "image_auroc": 100 * float(metrics.compute_imagewise_retrieval_metrics(scores, labels)["auroc"]),
        "pixel_auroc": 100 * float(pixel["auroc"]),
    }


SIDES = {"ours": ours, "anomalib": anomalib_side, "official": official_side}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("side", choices=tuple(SIDES))
    parser.add_argument(
        "--root", required=True, help="an MVTec-layout folder (<root>/<category>/train/good ...)"
    )
    parser.add_argument("--category", required=True)
    parser.add_argument("--backbone", required=True, help="a timm model name")
    parser.add_argument("--weights", required=True, help="that model's timm state dict (.pth)")
    parser.add_argument(
        "--layers", required=True, help="timm module names, comma-separated (blocks.2,blocks.4)"
    )
    parser.add_argument(
        "--layer_indices", required=True, help="the same layers as timm feature indices (2,3)"
    )
    parser.add_argument("--mean", type=float, nargs=3, required=True, help="the backbone's normalization")
    parser.add_argument("--std", type=float, nargs=3, required=True)
    parser.add_argument(
        "--projection_dim", type=int, required=True, help="the coreset's projection dimension"
    )
    parser.add_argument("--code", help="the official side: a patchcore-inspection checkout")
    parser.add_argument("--out", required=True, help="a scratch folder for the run")
    args = parser.parse_args(argv)
    if args.side == "official" and not args.code:
        parser.error("the official side needs --code <patchcore-inspection checkout>")
    result = SIDES[args.side](args)
    print("PEER_RESULT " + json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
