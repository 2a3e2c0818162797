"""Training throughput of BiHPF (ResNet-50 by default) in images/s: float32 vs bf16 autocast with channels-last
memory, same batches, one process. Used by scripts/gpu_check.sh; runs on CPU too (small sizes) for testing.

    python scripts/gpu_throughput.py [--device cuda] [--backbone resnet50] [--image-size 224] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning_modules.bihpf.module import BiHPFModule  # noqa: E402


def images_per_second(
    device: str, backbone: str, image_size: int, batch_size: int, steps: int, bf16_channels_last: bool
) -> float:
    torch.manual_seed(0)
    module = BiHPFModule(backbone=backbone, pretrained=False).to(device)
    images = torch.rand(batch_size, 3, image_size, image_size, device=device)
    labels = torch.randint(0, 2, (batch_size,), device=device).float()
    if bf16_channels_last:
        module = module.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-4)
    autocast = (
        torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)
        if bf16_channels_last
        else contextlib.nullcontext()
    )
    warmup = 3
    for step in range(warmup + steps):
        if step == warmup:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            logits = module.net(images)
        loss = F.binary_cross_entropy_with_logits(logits.float().flatten(), labels)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {step} (bf16={bf16_channels_last})")
        loss.backward()
        optimizer.step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    shape = (args.device, args.backbone, args.image_size, args.batch_size, args.steps)
    fp32 = images_per_second(*shape, bf16_channels_last=False)
    bf16 = images_per_second(*shape, bf16_channels_last=True)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    line = (
        f"BiHPF {args.backbone} {args.image_size} px batch {args.batch_size} on {name}: float32 {fp32:.0f} images/s, "
        f"bf16-mixed + channels-last {bf16:.0f} images/s (x{bf16 / fp32:.2f})"
    )
    print(line, flush=True)
    return line


if __name__ == "__main__":
    main()
