"""`make bench`: three measurements, written to benchmarks/results.md (not tests: numbers, not pass/fail).

1. Training step through Lightning vs a plain PyTorch loop, same network, same batches, same optimizer: the
   ratio of median step times (1.00 = no overhead).
2. Our image input pipeline vs torchvision ImageFolder + transforms.v2 doing the same work (benchmarks/
   input_pipeline.py): ratio of images/s.
3. Peak memory of a smoke-size fit per method config (benchmarks/peak_memory.py).

Absolute numbers depend on the machine; the ratios, measured in one process, are what to compare across commits.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from benchmarks.config_introspection import in_run_order, method_configs
from benchmarks.input_pipeline import compare
from benchmarks.peak_memory import peak_memory
from lightning_modules.bihpf.module import BiHPFModule

RESULTS = Path(__file__).with_name("results.md")


class StepTimer(L.Callback):
    """Time between consecutive ``on_train_batch_end`` calls."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_train_batch_end(self, *args, **kwargs) -> None:
        self.stamps.append(time.perf_counter())


def make_batches(count: int, batch_size: int, image_size: int) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [
        {
            "image": torch.rand(batch_size, 3, image_size, image_size, generator=generator),
            "label": torch.randint(0, 2, (batch_size,), generator=generator),
        }
        for _ in range(count)
    ]


def plain_step_times(module: BiHPFModule, batches: list[dict[str, torch.Tensor]]) -> list[float]:
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-4)
    module.train()
    times = []
    for batch in batches:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = F.binary_cross_entropy_with_logits(module.net(batch["image"]).float(), batch["label"].float())
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return times


def lightning_step_times(module: BiHPFModule, batches: list[dict[str, torch.Tensor]]) -> list[float]:
    timer = StepTimer()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=len(batches),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[timer],
    )
    loader = DataLoader(batches, batch_size=None, shuffle=False)
    trainer.fit(module, train_dataloaders=loader)
    return [b - a for a, b in zip(timer.stamps, timer.stamps[1:], strict=False)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--root", type=Path, default=Path(".standins"), help="where stand-ins are built")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers for the input pipeline")
    args = parser.parse_args()
    torch.manual_seed(0)
    batches = make_batches(args.steps, args.batch_size, args.image_size)
    warmup = 3
    rows = []
    for name in ("bihpf", "cnndetection"):
        options = {
            "backbone": args.backbone,
            "pretrained": False,
            "use_frequency": name == "bihpf",
            "use_pixel": name == "bihpf",
        }
        plain = statistics.median(plain_step_times(BiHPFModule(**options), batches)[warmup:])
        lightning = statistics.median(lightning_step_times(BiHPFModule(**options), batches)[warmup:])
        rows.append((name, plain, lightning))
        print(f"{name}: plain {plain * 1e3:.1f} ms/step, lightning {lightning * 1e3:.1f} ms/step", flush=True)
    lines = [
        "# Benchmarks",
        "",
        f"`make bench` on {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, CPU.",
        "",
        f"## Training step: Lightning vs plain PyTorch ({args.backbone}, batch {args.batch_size}, "
        f"{args.image_size} px, median of {args.steps - warmup} steps)",
        "",
        "| method | plain ms/step | Lightning ms/step | ratio |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {n} | {p * 1e3:.1f} | {lt * 1e3:.1f} | {lt / p:.2f} |" for n, p, lt in rows]
    lines += input_pipeline_section(args.root, args.workers)
    lines += peak_memory_section(args.root)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"written to {RESULTS}")


def input_pipeline_section(
    root: Path, workers: int, image_size: int = 224, load_size: int = 256
) -> list[str]:
    ours, reference, count = compare(root, image_size, load_size, batch_size=32, workers=workers)
    print(f"input pipeline: ours {ours:.0f} images/s, torchvision {reference:.0f} images/s", flush=True)
    return [
        "",
        f"## Input pipeline: ours vs ImageFolder + transforms.v2 (stand-in PNGs, resize {load_size}, crop "
        f"{image_size}, flip; {workers} workers, best of 2 epochs, {count} images)",
        "",
        "| pipeline | images/s |",
        "|---|---:|",
        f"| datamodules (albumentations) | {ours:.0f} |",
        f"| torchvision ImageFolder + v2 | {reference:.0f} |",
        f"| ratio ours / torchvision | {ours / reference:.2f} |",
    ]


def peak_memory_section(root: Path) -> list[str]:
    configs = in_run_order(method_configs())
    lines = [
        "",
        "## Peak memory of one smoke-size fit (configs/smoke.yaml: 32 px, batch 4, 2 steps)",
        "",
        "Each fit in a process of its own, reading its own high-water mark (VmHWM); the configs whose paper starts "
        "from ImageNet weights run with `--imagenet lite0` (EfficientNet-Lite0), the others with their own "
        "backbone, as the tests' smoke runs do.",
        "",
        "| config | peak RSS (MiB) | peak CUDA (MiB) |",
        "|---|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as runs:
        for config in configs:
            peak = peak_memory(config, root.resolve(), Path(runs))
            cuda = "—" if peak["cuda_mib"] is None else f"{peak['cuda_mib']:.0f}"
            lines.append(f"| {config.stem} | {peak['rss_mib']:.0f} | {cuda} |")
            print(f"{config.stem}: peak RSS {peak['rss_mib']:.0f} MiB", flush=True)
    return lines


if __name__ == "__main__":
    main()
