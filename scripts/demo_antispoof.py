"""`make demo-antispoof`: mToFNet (trained with no spoof) vs the supervised baselines (RGB-D and RGB only, trained
on the seen displays' spoofs) on the RGB-D stand-in, tested on every display; the unseen displays are the
comparison.

Both use ``configs/demo_rgbd.yaml`` (64 px, ResNet-18 from scratch, 20 epochs) and set their threshold at BPCER
5 % on genuine validation captures. The table is read back from each run's ``results.csv``.

    python scripts/demo_antispoof.py [--seeds 0 1 2] [--methods mToFNet ...] [--report_only] [extra cli arguments]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from demo_common import cli_run, write_report

from lightning_modules.outputs.tables import read_result_table

# name -> (config, extra arguments, run-name tag)
METHODS = {
    "mToFNet": ("mtofnet", [], "mtofnet"),
    "supervised RGB-D": ("rgbd_supervised", [], "rgbd_supervised"),
    "supervised RGB": ("rgbd_supervised", ["--model.init_args.inputs", "rgb"], "rgb_supervised"),
}
ROWS = ("mean unseen", "mean seen", "all")
COLUMNS = ("acer", "auc", "apcer", "bpcer")


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--methods", nargs="+", default=list(METHODS), choices=list(METHODS), help="methods to train"
    )
    parser.add_argument("--report_only", action="store_true", help="rebuild the table from finished runs")
    parser.add_argument("--runs_dir", default="runs")
    args, extra = parser.parse_known_args(argv)
    started = time.perf_counter()
    for seed in args.seeds:
        for method in [] if args.report_only else args.methods:
            config, options, tag = METHODS[method]
            common = [
                "--config",
                f"configs/{config}.yaml",
                "--config",
                "configs/demo_rgbd.yaml",
                *options,
                "--seed_everything",
                str(seed),
                "--run_name",
                f"demo_antispoof_{tag}_seed{seed}",
                "--runs_dir",
                args.runs_dir,
                *extra,
            ]
            cli_run(["fit", *common])
            cli_run(["test", *common, "--ckpt_path", "last"])
    tables: dict[str, list[dict[str, dict[str, object]]]] = {}
    for method, (_, _, tag) in METHODS.items():  # every method with finished runs for all seeds
        files = [
            Path(args.runs_dir) / f"demo_antispoof_{tag}_seed{seed}" / "version_0" / "results.csv"
            for seed in args.seeds
        ]
        if all(f.is_file() for f in files):
            tables[method] = [{str(r["group"]): r for r in read_result_table(f)} for f in files]
    lines = [
        "| method | displays | " + " | ".join(f"{c.upper()} (%)" for c in COLUMNS) + " |",
        "|---|---|" + "---:|" * len(COLUMNS),
    ]
    for row_name in ROWS:
        for method, runs in tables.items():
            cells = [_mean_std([float(run[row_name][c]) for run in runs]) for c in COLUMNS]
            lines.append(f"| {method} | {row_name} | " + " | ".join(cells) + " |")
    displays = sorted(g for g in next(iter(tables.values()))[0] if g not in ROWS)
    lines += [
        "",
        "Per display, ACER (%) / AUC (%):",
        "",
        "| method | " + " | ".join(displays) + " |",
        "|---|" + "---:|" * len(displays),
    ]
    for method, runs in tables.items():
        cells = [
            f"{_mean([float(r[d]['acer']) for r in runs]):.1f} / {_mean([float(r[d]['auc']) for r in runs]):.1f}"
            + (" (unseen)" if runs[0][d]["seen"] == "no" else "")
            for d in displays
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    markdown = "\n".join(lines) + "\n"
    if not args.report_only:
        trained = ", ".join(args.methods)
        markdown += f"\nTrained here: {trained}, {len(args.seeds)} seeds, {(time.perf_counter() - started) / 60:.1f} min\n"
    write_report(markdown, args.runs_dir, "demo_antispoof")
    return markdown


def _mean(values: list[float]) -> float:
    return statistics.mean(values)


def _mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {spread:.1f}"


if __name__ == "__main__":
    main()
