"""`make demo-anomaly`: PatchCore and Reverse Distillation on the MVTec-layout stand-in, one-shot, few-shot (4)
and full-shot, every category: image AUROC, pixel AUROC and AUPRO (%), read back from each run's results.csv.

Both use ``configs/demo_anomaly.yaml`` (128 px, randomly initialised ResNet-18: no ImageNet weights offline).
Reverse Distillation trains ``--rd_steps`` steps whatever the number of shots (the few images are cycled).
The same script runs the real protocol: ``--overlay none --rd_steps 0`` keeps the method configs as they are
(``--rd_steps 0``: the config's 200 epochs), with ``--data.init_args.root`` and ``--categories`` of the data.

    python scripts/demo_anomaly.py [--seeds 0] [--methods PatchCore ...] [--regimes one-shot ...]
                                   [--categories brick ...] [--overlay none] [--report_only] [extra cli arguments]
"""

from __future__ import annotations

import argparse
import statistics
import time

from demo_common import cli_run, newest_run_file, write_report

from datamodules.standins.mvtec import SIZES
from lightning_modules.common.results import read_result_table

METHODS = {"PatchCore": "patchcore_mvtec", "Reverse Distillation": "reverse_distillation_mvtec"}
REGIMES = {"one-shot": "1", "few-shot (4)": "4", "full-shot": "null"}
METRICS = ("image_auroc", "pixel_auroc", "pro")


def run_name(config: str, category: str, shots: str, seed: int) -> str:
    return f"demo_anomaly_{config}_{category}_{'full' if shots == 'null' else shots + 'shot'}_seed{seed}"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0], help="data seeds (which shots are drawn)"
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    parser.add_argument("--categories", nargs="+", default=list(SIZES["small"][0]))
    parser.add_argument(
        "--rd_steps", type=int, default=300, help="Reverse Distillation steps (0: the config's)"
    )
    parser.add_argument("--overlay", default="configs/demo_anomaly.yaml", help="overlay config, or none")
    parser.add_argument("--report_only", action="store_true", help="rebuild the tables from finished runs")
    parser.add_argument("--runs_dir", default="runs")
    args, extra = parser.parse_known_args(argv)
    started = time.perf_counter()
    steps_per_epoch = 4  # epoch_size 64 / batch 16
    for seed in [] if args.report_only else args.seeds:
        for regime in args.regimes:
            for method in args.methods:
                config, shots = METHODS[method], REGIMES[regime]
                for category in args.categories:
                    options = []
                    if config == "reverse_distillation_mvtec" and args.rd_steps > 0:
                        options = ["--data.init_args.epoch_size", "64", "--trainer.max_epochs",
                                   str(max(1, args.rd_steps // steps_per_epoch))]  # fmt: skip
                    overlay = [] if args.overlay == "none" else ["--config", args.overlay]
                    common = ["--config", f"configs/{config}.yaml", *overlay,
                              "--data.init_args.category", category, "--data.init_args.shots", shots,
                              "--data.init_args.seed", str(seed), "--seed_everything", str(seed), *options,
                              "--run_name", run_name(config, category, shots, seed), "--runs_dir", args.runs_dir,
                              *extra]  # fmt: skip
                    cli_run(["fit", *common])
                    cli_run(["test", *common, "--ckpt_path", "last"])
    markdown = report(args)
    if not args.report_only:
        markdown += (
            f"\nTrained here in {(time.perf_counter() - started) / 60:.1f} min ({len(args.seeds)} seed(s))\n"
        )
    write_report(markdown, args.runs_dir, "demo_anomaly")
    return markdown


def report(args: argparse.Namespace) -> str:
    """One table per regime: a row per category and their mean; image AUROC / pixel AUROC / AUPRO per method."""
    lines = []
    for regime in args.regimes:
        header = [f"{m} {k}" for m in args.methods for k in ("image", "pixel", "PRO")]
        rows = []
        means: dict[str, list[float]] = {h: [] for h in header}
        for category in args.categories:
            cells = []
            for method in args.methods:
                values = _seed_means(args, METHODS[method], category, REGIMES[regime])
                for short, metric in zip(("image", "pixel", "PRO"), METRICS, strict=True):
                    value = values.get(metric) if values else None
                    cells.append("—" if value is None else f"{value:.1f}")
                    if value is not None:
                        means[f"{method} {short}"].append(value)
            rows.append(f"| {category} | " + " | ".join(cells) + " |")
        mean_cells = [
            f"**{statistics.mean(v):.1f}**" if len(v) == len(args.categories) else "—" for v in means.values()
        ]
        lines += [f"**{regime}** (%, mean over {len(args.seeds)} seed(s))", "",
                  "| category | " + " | ".join(header) + " |", "|---|" + "---:|" * len(header), *rows,
                  "| mean | " + " | ".join(mean_cells) + " |", ""]  # fmt: skip
    return "\n".join(lines)


def _seed_means(args: argparse.Namespace, config: str, category: str, shots: str) -> dict[str, float] | None:
    files = [
        newest_run_file(args.runs_dir, run_name(config, category, shots, s), "results.csv")
        for s in args.seeds
    ]
    if not all(files):  # the newest finished run of each seed
        return None
    alls = [next(r for r in read_result_table(f) if r["group"] == "all") for f in files]
    return {m: statistics.mean(float(row[m]) for row in alls) for m in METRICS}


if __name__ == "__main__":
    main()
