"""Is the input pipeline the bottleneck on a GPU? End to end from image files against the model fed on the device.

Two rows, each timed through the same Lightning ``Trainer`` both ways, so the ratio isolates the loader:

1. **BiHPF training** (ResNet-50 at 224 px, bf16-mixed + channels-last, batch 64): ``ForenSynthsDataModule``
   reading JPEG files (256 px) with ``configs/bihpf.yaml``'s augmentation (Wang et al.'s blur and JPEG
   re-compression, each with probability 0.5, random crop, flip) in ``--workers`` processes (default: every core),
   against the same model fed one of those batches, already on the device, again and again. With
   ``torch.compile`` off and on (``callbacks.CompileNetworks``, the CLI's ``--compile true``).
2. **PatchCore** feature extraction + memory-bank search (``Trainer.test``; ResNet-18 layers 2 and 3, 256 -> 224
   px, batch 32): ``MVTecDataModule`` reading PNG files at MVTec's size (1024 px) against the same batch on the
   device, over a test split of MVTec's size (960 images; its 15 categories have 1,725). The bank is fitted once,
   from 240 training files, before both.

The images are the stand-ins' own, resized to those sizes and written once under ``--work`` (cycled to as many
files as asked), so decoding them costs what real files of that size cost. Each side runs warm-up batches
untimed (cuDNN autotuning, compilation, workers starting), then timed ones; the device is synchronized only at
the two ends of the timed span, so the loader overlaps the model as in a real run. The warm-up is long on
purpose: while the first batches compile, the workers fill their prefetch queue (workers x 2 batches), and a
timed span that began on a full queue would credit a slow loader with the model's speed; 100 warm-up batches
drain it unless the loader is within a few percent of the model. A ratio (end to end / model only) of 0.9 or
more says the loader keeps up.

    python -m benchmarks.gpu_pipeline [--device cuda] [--work DIR] [--out benchmarks/gpu_<device>.md]

On CPU it runs too (``--device cpu`` with small sizes: the test does), but only a GPU's numbers mean anything.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from PIL import Image
from torch.utils.data import DataLoader

from benchmarks.readme_blocks import replace_block
from callbacks import ChannelsLast, CompileNetworks
from datamodules.batch import batch_size_of
from datamodules.forensynths import ForenSynthsDataModule
from datamodules.mvtec import MVTecDataModule
from lightning_modules.bihpf.module import BiHPFModule
from lightning_modules.patchcore.module import PatchCoreModule

REPO = Path(__file__).resolve().parents[1]
BLOCK = "gpu:pipeline"


class Throughput(L.Callback):
    """Images per second over the training or test batches after the first ``warmup``: the clock starts at the
    end of batch ``warmup`` and stops when training ends, or at the test epoch's end (callbacks run before the
    module's epoch end, so the anomaly metrics are not timed), the device synchronized at both ends only."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.batches, self.images = warmup, 0, 0
        self.start: float | None = None
        self.seconds: float | None = None

    @staticmethod
    def _synchronize(pl_module: L.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def _batch_end(self, pl_module: L.LightningModule, batch: Any) -> None:
        self.batches += 1
        if self.batches == self.warmup:
            self._synchronize(pl_module)
            self.start = time.perf_counter()
        elif self.batches > self.warmup:
            self.images += batch_size_of(batch)

    def _stop(self, pl_module: L.LightningModule) -> None:
        if self.start is not None and self.seconds is None:
            self._synchronize(pl_module)
            self.seconds = time.perf_counter() - self.start

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._batch_end(pl_module, batch)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._batch_end(pl_module, batch)

    def on_train_end(self, trainer, pl_module) -> None:
        self._stop(pl_module)

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self._stop(pl_module)

    @property
    def images_per_second(self) -> float:
        if not self.seconds or not self.images:
            raise RuntimeError(
                f"nothing was timed: {self.batches} batches seen, {self.warmup} of them warm-up "
                "(give more images or fewer warm-up batches)"
            )
        return self.images / self.seconds


@dataclass
class Row:
    """One comparison: images/s end to end from files and with the batch already on the device."""

    name: str
    setting: str
    end_to_end: float
    model_only: float

    @property
    def ratio(self) -> float:
        return self.end_to_end / self.model_only


# ------------------------------------------------------------------------------------------ files on disk
Copy = tuple[Path, Path, int, bool]  # source, target, side, is a mask


def resized_copy(job: Copy) -> None:
    """``source`` resized to ``side`` x ``side`` (bicubic; nearest for masks) and written to ``target`` (its
    suffix picks the format: JPEG at quality 90, PNG)."""
    source, target, side, mask = job
    target.parent.mkdir(parents=True, exist_ok=True)
    image = Image.open(source).convert("L" if mask else "RGB")
    image = image.resize((side, side), Image.NEAREST if mask else Image.BICUBIC)
    image.save(target, quality=90) if target.suffix == ".jpg" else image.save(target)


def write_copies(jobs: list[Copy], out: Path, processes: int) -> None:
    """Every copy, in ``processes`` processes, then a marker in ``out`` so the next run reuses them."""
    with ProcessPoolExecutor(max(1, processes)) as pool:
        list(pool.map(resized_copy, jobs, chunksize=16))
    (out / "DONE").touch()


def round_robin(sources: list[Path], count: int) -> list[Path]:
    """``count`` of ``sources``, taking one from each folder in turn (so every class folder gets files however few
    are asked for) and cycling within a folder."""
    folders: dict[Path, list[Path]] = {}
    for source in sorted(sources):
        folders.setdefault(source.parent, []).append(source)
    groups = list(folders.values())
    return [groups[i % len(groups)][(i // len(groups)) % len(groups[i % len(groups)])] for i in range(count)]


def forensynths_files(
    work: Path, images: int, side: int, standin_size: str = "small", processes: int = 1
) -> Path:
    """A CNNDetection-layout folder of ``images`` training JPEGs (and a small val split) at ``side`` px, made from
    the stand-in's training images (cycled, written once)."""
    out = work / f"forensynths_jpeg_{images}_{side}"
    if (out / "DONE").is_file():
        return out
    standin = ForenSynthsDataModule(root=str(work / "standins"), synthetic=True, standin_size=standin_size)
    standin.prepare_data()
    train = standin.data_dir / "train"
    sources = list(train.rglob("*.png"))
    folders = len({source.parent for source in sources})
    jobs = []
    for index, source in enumerate(round_robin(sources, images)):
        relative = source.relative_to(train).parent / f"{index:06d}.jpg"
        jobs.append((source, out / "train" / relative, side, False))
        if index < 2 * folders:  # a small val split, every folder in it
            jobs.append((source, out / "val" / relative, side, False))
    write_copies(jobs, out, processes)
    return out


def mvtec_files(
    work: Path,
    category: str,
    counts: dict[str, int],
    side: int,
    standin_size: str = "small",
    processes: int = 1,
) -> Path:
    """An MVTec-AD-layout folder of one stand-in category at ``side`` px: its train and test images cycled to
    ``counts[split]`` files each, every anomalous copy with its mask (written once)."""
    out = work / f"mvtec_{counts['train']}_{counts['test']}_{side}"
    if (out / category / "DONE").is_file():
        return out
    standin = MVTecDataModule(
        root=str(work / "standins"), synthetic=True, standin_size=standin_size, category=category
    )
    standin.prepare_data()
    source_dir = standin.category_dir
    jobs = []
    for split, images in counts.items():
        for index, source in enumerate(round_robin(list((source_dir / split).rglob("*.png")), images)):
            defect, name = source.parent.name, f"{index:06d}.png"
            jobs.append((source, out / category / split / defect / name, side, False))
            mask = source_dir / "ground_truth" / defect / f"{source.stem}_mask.png"
            if split == "test" and mask.is_file():
                target = out / category / "ground_truth" / defect / f"{index:06d}_mask.png"
                jobs.append((mask, target, side, True))
    write_copies(jobs, out / category, processes)
    return out


# ------------------------------------------------------------------------------------------ the two sides
def make_trainer(args: argparse.Namespace, callbacks: list[L.Callback], **loop: int) -> L.Trainer:
    """A quiet one-device Trainer: no logger, checkpoint, progress bar or validation; ``warmup + steps`` training
    batches unless ``loop`` says otherwise (``max_epochs``, ``max_steps``); what a module writes (PatchCore's
    result table) goes under ``--work``."""
    return L.Trainer(
        default_root_dir=args.work / "trainer",
        accelerator="gpu" if args.device.startswith("cuda") else "cpu",
        devices=1,
        precision=args.precision,
        max_steps=loop.get("max_steps", args.warmup + args.steps),
        max_epochs=loop.get("max_epochs", -1),
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )


def on_device(loader: DataLoader, device: str, count: int) -> DataLoader:
    """The loader's first batch, moved to ``device`` once, ``count`` times: the model-only side's input."""
    batch = move_data_to_device(next(iter(loader)), torch.device(device))
    return DataLoader([batch] * count, batch_size=None, shuffle=False)


def bihpf_rows(args: argparse.Namespace) -> list[Row]:
    """BiHPF training images/s, end to end from JPEG files and model only, with torch.compile off and on."""
    root = forensynths_files(args.work, args.images, args.load_size, args.standin_size, args.workers)
    rows = []
    for compile_ in (False, True):
        speeds = {}
        for side in ("end to end", "model only"):
            torch.manual_seed(0)
            data = ForenSynthsDataModule(
                root=str(root),
                image_size=args.image_size,
                load_size=args.load_size,
                batch_size=args.batch_size,
                num_workers=args.workers,
            )
            data.setup("fit")
            loader = data.train_dataloader()
            if side == "model only":
                loader = on_device(loader, args.device, args.warmup + args.steps)
            module = BiHPFModule(backbone=args.backbone, pretrained=False)
            timer = Throughput(args.warmup)
            speedups: list[L.Callback] = [ChannelsLast()]
            speedups += [CompileNetworks(modules=["net"], backend=args.compile_backend)] if compile_ else []
            make_trainer(args, [timer, *speedups]).fit(module, train_dataloaders=loader)
            speeds[side] = timer.images_per_second
            print(f"BiHPF, compile {compile_}, {side}: {speeds[side]:.0f} images/s", flush=True)
        setting = f"{args.precision} + channels-last" + (" + torch.compile" if compile_ else "")
        rows.append(Row("BiHPF training", setting, speeds["end to end"], speeds["model only"]))
    return rows


def patchcore_rows(args: argparse.Namespace) -> list[Row]:
    """PatchCore's test pass (features + bank search) images/s, end to end from PNG files and model only."""
    counts = {"train": args.mvtec_train, "test": args.mvtec_test}
    root = mvtec_files(args.work, args.category, counts, args.mvtec_side, args.standin_size, args.workers)
    data = MVTecDataModule(
        root=str(root),
        category=args.category,
        image_size=args.image_size,
        crop_fraction=0.875,
        batch_size=args.mvtec_batch_size,
        num_workers=args.workers,
        val_split="none",
    )
    data.setup("fit")
    data.setup("test")
    module = PatchCoreModule(pretrained=False)
    make_trainer(args, [], max_epochs=1, max_steps=-1).fit(module, train_dataloaders=data.train_dataloader())
    loaders = {"end to end": data.test_dataloader()}
    batches = max(1, len(loaders["end to end"]))
    loaders["model only"] = on_device(data.test_dataloader(), args.device, batches)
    speeds = {}
    for side, loader in loaders.items():
        timer = Throughput(min(args.mvtec_warmup, batches - 1))
        make_trainer(args, [timer, ChannelsLast()]).test(module, loader, verbose=False)
        speeds[side] = timer.images_per_second
        print(f"PatchCore, {side}: {speeds[side]:.0f} images/s", flush=True)
    return [Row("PatchCore test pass", f"{args.precision} + channels-last", *speeds.values())]


# ------------------------------------------------------------------------------------------ report
def device_name(device: str) -> str:
    return torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else "CPU"


def report(rows: list[Row], args: argparse.Namespace, command: str) -> str:
    lines = [
        f"`{command}` on {device_name(args.device)}, {args.workers} loader workers, torch {torch.__version__}; "
        f"BiHPF: {args.warmup} warm-up and {args.steps} timed batches of {args.batch_size} per side from "
        f"{args.images} JPEGs of {args.load_size} px; PatchCore: {args.mvtec_test} test PNGs of {args.mvtec_side} px "
        f"in batches of {args.mvtec_batch_size}, the first {args.mvtec_warmup} untimed; random weights (only the "
        "speed matters).",
        "",
        "| what | setting | end to end, images/s | model only, images/s | ratio | loader keeps up (>= 0.9) |",
        "|---|---|---:|---:|---:|---|",
    ]
    lines += [
        f"| {r.name} | {r.setting} | {r.end_to_end:.0f} | {r.model_only:.0f} | {r.ratio:.2f} | "
        f"{'yes' if r.ratio >= 0.9 else 'no'} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def default_out(device: str) -> Path:
    """benchmarks/gpu_<device>.md, the device named as in ``gpu_h200.md`` (``NVIDIA H200`` -> ``h200``)."""
    name = device_name(device).lower().replace("nvidia", "")
    return REPO / "benchmarks" / f"gpu_{re.sub(r'[^a-z0-9]+', '_', name).strip('_') or 'device'}.md"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "gpu_pipeline", help="image files")
    parser.add_argument("--out", type=Path, help="markdown file (default benchmarks/gpu_<device>.md)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--precision", default="bf16-mixed")
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--load_size", type=int, default=256, help="side of the JPEG files")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--images", type=int, default=8192, help="BiHPF training JPEGs written")
    parser.add_argument("--compile_backend", default="inductor", help="torch.compile backend (eager: tests)")
    parser.add_argument("--warmup", type=int, default=100, help="BiHPF batches untimed (see above: why 100)")
    parser.add_argument("--steps", type=int, default=200, help="BiHPF batches timed")
    parser.add_argument("--category", default="brick")
    parser.add_argument("--mvtec_side", type=int, default=1024, help="side of the MVTec-layout PNG files")
    parser.add_argument("--mvtec_train", type=int, default=240, help="PatchCore training PNGs (its bank)")
    parser.add_argument("--mvtec_test", type=int, default=960, help="PatchCore test PNGs (timed)")
    parser.add_argument("--mvtec_batch_size", type=int, default=32)
    parser.add_argument("--mvtec_warmup", type=int, default=5, help="PatchCore test batches untimed")
    parser.add_argument("--standin_size", default="small", help="the stand-ins the files are made from")
    parser.add_argument("--rows", nargs="+", default=["bihpf", "patchcore"], choices=["bihpf", "patchcore"])
    args = parser.parse_args(argv)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    command = shlex.join(
        ["python", "-m", "benchmarks.gpu_pipeline", *(sys.argv[1:] if argv is None else argv)]
    )
    rows = []
    rows += bihpf_rows(args) if "bihpf" in args.rows else []
    rows += patchcore_rows(args) if "patchcore" in args.rows else []
    markdown = report(rows, args, command)
    out = args.out or default_out(args.device)
    if not out.is_file():
        out.write_text(f"# GPU check on {device_name(args.device)}\n")
    replace_block(out, BLOCK, "## End to end: the loader against the model\n\n" + markdown)
    print(markdown, flush=True)
    return markdown


if __name__ == "__main__":
    main()
