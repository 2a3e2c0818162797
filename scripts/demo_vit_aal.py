"""`make demo-vit`: plain ViT vs ViT + attention links vs the advanced module, digits stand-in, 10 % of its
training images, 3 seeds each.

1. A CIFAR ResNet-20 is trained in this framework on all the stand-in's training images (the paper's CNN is an
   ImageNet ResNet-50 that saw the full dataset the small subsets are drawn from); it is the frozen CNN.
2. Per seed: the plain ViT (``configs/vit_cifar100.yaml``), ViT + AAL (``configs/vit_aal_cifar100.yaml`` with
   that CNN's last stage, 8x8 x 64 channels), and the advanced module (``configs/vit_aal_advanced_cifar100.yaml``
   reading the links of the same seed's AAL run, ViT from scratch), all with ``configs/demo_vit.yaml``.
3. Reported per variant, mean ± std over seeds: test accuracy of the last epoch, best validation accuracy, and
   the first epoch whose validation accuracy reaches ``--target`` (runs that never reach it are counted).

    python scripts/demo_vit_aal.py [--seeds 0 1 2] [--epochs 60] [--target 0.5] [extra cli arguments]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from demo_common import cli_run, write_report
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

VARIANTS = {
    "plain ViT": "vit_cifar100",
    "ViT + AAL": "vit_aal_cifar100",
    "advanced": "vit_aal_advanced_cifar100",
}


def validation_curve(run_dir: Path) -> list[float]:
    """``val/acc`` per epoch (logged once per validation, i.e. per epoch), in step order, from the run's
    TensorBoard events (a resumed run's later file overrides repeated steps)."""
    values: dict[int, float] = {}
    for file in sorted(run_dir.glob("events.out.tfevents.*")):
        events = EventAccumulator(str(file), size_guidance={"scalars": 0})
        events.Reload()
        values |= {event.step: event.value for event in events.Scalars("val/acc")}
    return [values[step] for step in sorted(values)]


def first_epoch_reaching(curve: list[float], target: float) -> int | None:
    """1-based epoch at which validation accuracy first reaches ``target`` (None: never)."""
    return next((epoch for epoch, value in enumerate(curve, start=1) if value >= target), None)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--cnn_epochs", type=int, default=8)
    parser.add_argument(
        "--target", type=float, default=0.5, help="validation accuracy for the epochs-to-reach column"
    )
    parser.add_argument("--runs_dir", default="runs")
    args, extra = parser.parse_known_args(argv)
    started = time.perf_counter()
    cnn = cli_run(["fit", "--config", "configs/cls_cifar10.yaml", "--config", "configs/demo_classification.yaml",
                   "--trainer.max_epochs", str(args.cnn_epochs), "--trainer.callbacks", "[]",
                   "--run_name", "demo_vit_cnn", "--runs_dir", args.runs_dir, *extra])  # fmt: skip
    cnn_checkpoint = Path(cnn.trainer.log_dir) / "checkpoints" / "last.ckpt"
    cnn_accuracy = float(cnn.trainer.callback_metrics["val/acc"])
    with_cnn = ["--model.init_args.cnn_backbone", "cifar_resnet20", "--model.init_args.cnn_layer", "blocks.8",
                "--model.init_args.cnn_normalization", "cifar", "--model.init_args.pretrained_path", str(cnn_checkpoint)]  # fmt: skip
    results: dict[str, list[tuple[float, float, int | None]]] = {v: [] for v in VARIANTS}
    for seed in args.seeds:
        for variant, config in VARIANTS.items():
            name = f"demo_vit_{config}_seed{seed}"
            options = [] if config == "vit_cifar100" else list(with_cnn)
            if config == "vit_aal_advanced_cifar100":
                options += [
                    "--model.init_args.links_path",
                    str(Path(args.runs_dir) / f"demo_vit_vit_aal_cifar100_seed{seed}"),
                ]
            common = ["--config", f"configs/{config}.yaml", "--config", "configs/demo_vit.yaml", *options,
                      "--trainer.max_epochs", str(args.epochs), "--seed_everything", str(seed),
                      "--run_name", name, "--runs_dir", args.runs_dir, *extra]  # fmt: skip
            fit = cli_run(["fit", *common])
            curve = validation_curve(Path(fit.trainer.log_dir))
            test = cli_run(["test", *common, "--ckpt_path", "last"])
            accuracy = float(test.trainer.callback_metrics["test/acc"])
            results[variant].append(
                (100 * accuracy, 100 * max(curve), first_epoch_reaching(curve, args.target))
            )
    lines = [f"| variant | test acc, last epoch (%) | best val acc (%) | epoch reaching {100 * args.target:.0f} % val acc |",
             "|---|---:|---:|---:|"]  # fmt: skip
    for variant, rows in results.items():
        test_acc, best, reach = zip(*rows, strict=True)
        reached = [r for r in reach if r is not None]
        when = f"{_mean_std(reached)}" if reached else "—"
        if len(reached) < len(reach):
            when += f" ({len(reach) - len(reached)} of {len(reach)} never)"
        lines.append(f"| {variant} | {_mean_std(test_acc)} | {_mean_std(best)} | {when} |")
    markdown = "\n".join(lines) + "\n"
    markdown += (f"\nFrozen CNN: CIFAR ResNet-20, {args.cnn_epochs} epochs on all training images, val acc "
                 f"{100 * cnn_accuracy:.1f} %. {len(args.seeds)} seeds x {len(VARIANTS)} variants, {args.epochs} "
                 f"epochs each: {(time.perf_counter() - started) / 60:.1f} min\n")  # fmt: skip
    write_report(markdown, args.runs_dir, "demo_vit_aal")
    return markdown


def _mean_std(values: tuple[float, ...] | list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {spread:.1f}"


if __name__ == "__main__":
    main()
