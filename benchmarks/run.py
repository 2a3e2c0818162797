"""`make bench`: overhead ratios measured in one process, written to benchmarks/results.md.

Training step through Lightning vs a plain PyTorch loop, same network, same batches, same optimiser: the
ratio of median step times (1.00 = no overhead). Absolute times depend on the machine; the ratio is what to
compare across commits.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

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
    optimiser = torch.optim.Adam(module.parameters(), lr=1e-4)
    module.train()
    times = []
    for batch in batches:
        start = time.perf_counter()
        optimiser.zero_grad(set_to_none=True)
        loss = F.binary_cross_entropy_with_logits(module.net(batch["image"]).float(), batch["label"].float())
        loss.backward()
        optimiser.step()
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
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
