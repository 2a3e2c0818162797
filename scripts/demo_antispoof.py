"""`make demo-antispoof`: mToFNet (trained with no spoof) vs the supervised RGB-D baseline (trained on the seen
displays' spoofs) on the RGB-D stand-in, tested on every display; the unseen displays are the comparison.

Both use ``configs/demo_rgbd.yaml`` (64 px, ResNet-18 from scratch, 20 epochs) and set their threshold at BPCER
5 % on genuine validation captures. The table is read back from each run's ``results.csv``.

    python scripts/demo_antispoof.py [--seeds 0 1 2] [extra cli arguments]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from demo_common import cli_run, write_report

from lightning_modules.common.results import read_result_table

METHODS = {"mToFNet": "mtofnet", "supervised RGB-D": "rgbd_supervised"}
ROWS = ("mean unseen", "mean seen", "all")
COLUMNS = ("acer", "auc", "apcer", "bpcer")


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--report_only", action="store_true", help="rebuild the table from finished runs")
    parser.add_argument("--runs_dir", default="runs")
    args, extra = parser.parse_known_args(argv)
    started = time.perf_counter()
    tables: dict[str, list[dict[str, dict[str, object]]]] = {m: [] for m in METHODS}
    for seed in args.seeds:
        for method, config in METHODS.items():
            name = f"demo_antispoof_{config}_seed{seed}"
            if not args.report_only:
                common = ["--config", f"configs/{config}.yaml", "--config", "configs/demo_rgbd.yaml",
                          "--seed_everything", str(seed), "--run_name", name, "--runs_dir", args.runs_dir, *extra]  # fmt: skip
                cli_run(["fit", *common])
                cli_run(["test", *common, "--ckpt_path", "last"])
            rows = read_result_table(Path(args.runs_dir) / name / "version_0" / "results.csv")
            tables[method].append({str(r["group"]): r for r in rows})
    lines = ["| method | displays | " + " | ".join(f"{c.upper()} (%)" for c in COLUMNS) + " |",
             "|---|---|" + "---:|" * len(COLUMNS)]  # fmt: skip
    for row_name in ROWS:
        for method, runs in tables.items():
            cells = [_mean_std([float(run[row_name][c]) for run in runs]) for c in COLUMNS]
            lines.append(f"| {method} | {row_name} | " + " | ".join(cells) + " |")
    displays = sorted(g for g in tables["mToFNet"][0] if g not in ROWS)
    lines += ["", "Per display, ACER (%) / AUC (%):", "", "| method | " + " | ".join(displays) + " |",
              "|---|" + "---:|" * len(displays)]  # fmt: skip
    for method, runs in tables.items():
        cells = [f"{_mean([float(r[d]['acer']) for r in runs]):.1f} / {_mean([float(r[d]['auc']) for r in runs]):.1f}"
                 + (" (unseen)" if runs[0][d]["seen"] == "no" else "") for d in displays]  # fmt: skip
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    markdown = "\n".join(lines) + "\n"
    if not args.report_only:
        markdown += f"\n{len(args.seeds)} seeds x {len(METHODS)} methods: {(time.perf_counter() - started) / 60:.1f} min\n"
    write_report(markdown, args.runs_dir, "demo_antispoof")
    return markdown


def _mean(values: list[float]) -> float:
    return statistics.mean(values)


def _mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {spread:.1f}"


if __name__ == "__main__":
    main()
