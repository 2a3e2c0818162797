"""`make demo-vit`: plain ViT vs ViT + attention links vs the advanced module, digits stand-in, 10 % of its
training images, 3 seeds each.

1. A CIFAR ResNet-20 is trained in this framework on all the stand-in's training images (the paper's CNN is an
   ImageNet ResNet-50 that saw the full dataset the small subsets are drawn from); it is the frozen CNN.
2. Per seed: the plain ViT (``configs/vit_cifar100.yaml``), ViT + AAL (``configs/vit_aal_cifar100.yaml`` with
   that CNN's last stage, 8x8 x 64 channels), and the advanced module (``configs/vit_aal_advanced_cifar100.yaml``
   reading the links of the same seed's AAL run, ViT from scratch), all with ``configs/demo_vit.yaml``.
3. Reported per variant, mean ± std over seeds, read back from the run folders (``results.csv``, TensorBoard
   events; ``--report_only`` rebuilds the table from finished runs): test accuracy of the last epoch, best
   validation accuracy, and the first epoch whose validation accuracy reaches each of ``--targets`` (runs that
   never reach one are counted).

    python scripts/demo_vit_aal.py [--seeds 0 1 2] [--epochs 100] [--targets 0.2 0.3] [extra cli arguments]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from demo_common import cli_run, write_report
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_modules.outputs.tables import read_result_table

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
        if "val/acc" in events.Tags()["scalars"]:  # the test run's file has none
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
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--cnn_epochs", type=int, default=8)
    parser.add_argument(
        "--targets",
        type=float,
        nargs="+",
        default=[0.2, 0.3],
        help="validation accuracies for the epochs-to-reach columns",
    )
    parser.add_argument("--report_only", action="store_true", help="rebuild the table from finished runs")
    parser.add_argument("--runs_dir", default="runs")
    args, extra = parser.parse_known_args(argv)
    runs = Path(args.runs_dir)
    started = time.perf_counter()
    if not args.report_only:
        train_all(args, extra)
    results: dict[str, list[tuple[float, list[float]]]] = {v: [] for v in VARIANTS}
    for seed in args.seeds:
        for variant, config in VARIANTS.items():
            run_dir = runs / f"demo_vit_{config}_seed{seed}" / "version_0"
            test_acc = float(read_result_table(run_dir / "results.csv")[0]["acc"])
            results[variant].append((test_acc, validation_curve(run_dir)))
    header = " | ".join(f"epoch reaching {100 * t:.0f} % val acc" for t in args.targets)
    lines = [
        f"| variant | test acc, last epoch (%) | best val acc (%) | {header} |",
        "|---|---:|---:|" + "---:|" * len(args.targets),
    ]
    for variant, rows in results.items():
        cells = [_mean_std([acc for acc, _ in rows]), _mean_std([100 * max(curve) for _, curve in rows])]
        for target in args.targets:
            reach = [first_epoch_reaching(curve, target) for _, curve in rows]
            reached = [r for r in reach if r is not None]
            cell = _mean_std(reached) if reached else "—"
            if len(reached) < len(reach):
                cell += f" ({len(reach) - len(reached)} of {len(reach)} never)"
            cells.append(cell)
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    cnn_curve = validation_curve(runs / "demo_vit_cnn" / "version_0")
    markdown = "\n".join(lines) + "\n"
    markdown += (
        f"\nFrozen CNN: CIFAR ResNet-20 trained on all training images, final val acc {100 * cnn_curve[-1]:.1f} %. "
        f"{len(args.seeds)} seeds x {len(VARIANTS)} variants"
        + (
            ""
            if args.report_only
            else f", {args.epochs} epochs each: {(time.perf_counter() - started) / 60:.1f} min"
        )
        + "\n"
    )
    write_report(markdown, runs, "demo_vit_aal")
    return markdown


def train_all(args: argparse.Namespace, extra: list[str]) -> None:
    """The CNN, then per seed the three variants (fit, then test of the last epoch)."""
    cnn = cli_run(
        [
            "fit",
            "--config",
            "configs/cls_cifar10.yaml",
            "--config",
            "configs/demo_classification.yaml",
            "--trainer.max_epochs",
            str(args.cnn_epochs),
            "--trainer.callbacks",
            "[]",
            "--run_name",
            "demo_vit_cnn",
            "--runs_dir",
            args.runs_dir,
            *extra,
        ]
    )
    cnn_checkpoint = Path(cnn.trainer.log_dir) / "checkpoints" / "last.ckpt"
    with_cnn = [
        "--model.init_args.cnn_backbone",
        "cifar_resnet20",
        "--model.init_args.cnn_layer",
        "blocks.8",
        "--model.init_args.cnn_normalization",
        "cifar",
        "--model.init_args.pretrained_path",
        str(cnn_checkpoint),
    ]
    for seed in args.seeds:
        for config in VARIANTS.values():
            options = [] if config == "vit_cifar100" else list(with_cnn)
            if config == "vit_aal_advanced_cifar100":
                links = Path(args.runs_dir) / f"demo_vit_vit_aal_cifar100_seed{seed}"
                options += ["--model.init_args.links_path", str(links)]
            common = [
                "--config",
                f"configs/{config}.yaml",
                "--config",
                "configs/demo_vit.yaml",
                *options,
                "--trainer.max_epochs",
                str(args.epochs),
                "--seed_everything",
                str(seed),
                "--run_name",
                f"demo_vit_{config}_seed{seed}",
                "--runs_dir",
                args.runs_dir,
                *extra,
            ]
            cli_run(["fit", *common])
            cli_run(["test", *common, "--ckpt_path", "last"])


def _mean_std(values: tuple[float, ...] | list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {spread:.1f}"


if __name__ == "__main__":
    main()
