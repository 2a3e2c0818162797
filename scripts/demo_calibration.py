"""`make demo-calibration`: SCTL's setting on the real Fashion-MNIST-LT, end to end, three seeds.

1. per seed, train a CIFAR-style ResNet-20 on Fashion-MNIST-LT (rho = 100; ``configs/cls_cifar100_lt.yaml`` with
   ``configs/demo_calibration_fmnist.yaml``; the seed draws the long-tailed subset and the hold-out too) and test
   it: the PostHocCalibration callback fits every calibrator with every objective on the held-out calibration
   split and writes ``calibration.csv`` and the raw ``logits.npz``;
2. re-run the calibration of the first seed's logits alone with ``configs/cls_logits.yaml`` (no network): the
   same table;
3. the logits stand-in (an over-confident logistic regression on long-tailed digits) through the same config,
   whose calibration split holds every class in proportion.

The claims of ``benchmarks/claims.yaml`` for this demo (written before its runs) are judged on the seeds' test ECE
and accuracy. Finished runs are reused.

    python scripts/demo_calibration.py [--readme] [--seeds 0 1 2] [extra cli arguments for step 1]

(``--trainer.callbacks.<key>`` arguments among them, e.g. ``iterations``, apply to step 2's calibrations too.)

``--readme`` (what ``make demo-calibration`` passes) also writes the tables into
``lightning_modules/classification/README.md``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

from demo_common import REPO, cli_run, newest_run_file, option, write_report

sys.path.insert(0, str(REPO))
from benchmarks.claims import claims_section, load_claims, mean_sd  # noqa: E402

README = "lightning_modules/classification/README.md"
METHOD = ["--config", "configs/cls_cifar100_lt.yaml", "--config", "configs/demo_calibration_fmnist.yaml"]


def calibrated_run(seed: int, extra: list[str]) -> Path:
    """Fit (unless finished before) and test one seed; the run folder holding calibration.csv."""
    name = f"demo_calibration_seed{seed}"
    runs_dir = option(extra, "--runs_dir", "runs")
    common = [*METHOD, "--seed_everything", str(seed), "--data.init_args.seed", str(seed)]
    common += ["--run_name", name, *extra]
    if newest_run_file(runs_dir, name, "calibration.csv") is None:
        cli_run(["fit", *common])
        cli_run(["test", *common, "--ckpt_path", "last"])
    return newest_run_file(runs_dir, name, "calibration.csv", required=True).parent


def read_groups(folder: Path) -> dict[str, dict[str, float]]:
    """group -> metric -> value (%, NLL in nats) from a run's calibration.csv."""
    with open(folder / "calibration.csv") as handle:
        rows = [r for r in csv.DictReader(line for line in handle if not line.startswith("#"))]
    return {r["group"]: {k: float(v) for k, v in r.items() if k not in ("group", "seen") and v} for r in rows}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--readme", action="store_true", help=f"write the tables into {README}")
    args, extra = parser.parse_known_args(argv)
    started = time.perf_counter()
    runs = {seed: calibrated_run(seed, extra) for seed in args.seeds}
    trained = time.perf_counter() - started
    groups = {seed: read_groups(folder) for seed, folder in runs.items()}
    names = list(groups[args.seeds[0]])
    lines = [
        "| group | test ECE (%) | adaptive ECE (%) | class-wise ECE (%) | NLL | accuracy (%) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for group in names:
        cells = [
            mean_sd([groups[s][group][metric] for s in args.seeds])
            for metric in ("ece", "aece", "cwece", "nll", "acc")
        ]
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    markdown = (
        "ResNet-20 on Fashion-MNIST-LT, "
        + (
            f"mean ± sd over seeds {', '.join(map(str, args.seeds))}:\n\n"
            if len(args.seeds) > 1
            else f"seed {args.seeds[0]} only (no spread, and no claim is judged on one seed):\n\n"
        )
        + "\n".join(lines)
        + "\n"
    )
    claims = load_claims(demo="make demo-calibration")
    judged = {}
    if set(args.seeds) >= {s for c in claims.values() for s in c.seeds}:

        def values_for(claim) -> dict[str, dict[int, float]]:
            metric = "acc" if "accuracy" in claim.metric else "ece"
            members = {g for pair in claim.pairs for g in pair}
            return {g: {s: groups[s][g][metric] for s in args.seeds} for g in members}

        table, judged = claims_section(claims, values_for)
        markdown += "\n" + table
    markdown += "\n" + rerun_from_logits(runs[args.seeds[0]], extra)
    minutes = (time.perf_counter() - started) / 60
    markdown += f"\ntraining + test: {trained / 60:.1f} min (finished runs reused), total {minutes:.1f} min\n"
    record = {"groups": groups, "claims": judged}
    readme = README if args.readme else None
    write_report(markdown, option(extra, "--runs_dir", "runs"), "demo_calibration", readme, record, minutes)
    return markdown


def rerun_from_logits(run_dir: Path, extra: list[str]) -> str:
    """The first seed's calibration again from its logits.npz alone, and the logits stand-in."""
    runs_dir = option(extra, "--runs_dir", "runs")
    logits = ["--config", "configs/cls_logits.yaml", "--runs_dir", runs_dir, *calibration_options(extra)]
    again = cli_run(
        [
            "test",
            *logits,
            "--run_name",
            "demo_calibration_logits",
            "--data.init_args.path",
            str(run_dir / "logits.npz"),
        ]
    )
    same = read_groups(Path(again.trainer.log_dir)) == read_groups(run_dir)
    root = option(extra, "--data.init_args.root", ".standins")
    standin = cli_run(
        [
            "test",
            *logits,
            "--run_name",
            "demo_calibration_standin",
            "--data.init_args.synthetic",
            "true",
            "--data.init_args.root",
            root,
        ]
    )
    markdown = (Path(standin.trainer.log_dir) / "calibration.md").read_text().splitlines()
    table = "\n".join(line for line in markdown if line.startswith("|"))
    return (
        f"The first seed's `logits.npz` through `configs/cls_logits.yaml` gives "
        f"{'the identical table' if same else '**a different table**'}.\n\n"
        "The logits stand-in (its calibration split holds every class in proportion):\n\n" + table + "\n"
    )


def calibration_options(extra: list[str]) -> list[str]:
    """The ``--trainer.callbacks.<key> <value>`` pairs of ``extra`` (the calibration's own settings, such as
    ``iterations``): the logits re-run fits with them too, or its table could not be the same."""
    pairs = []
    for i, argument in enumerate(extra[:-1]):
        if argument.startswith("--trainer.callbacks.") and not extra[i + 1].startswith("--"):
            pairs += [argument, extra[i + 1]]
    return pairs


if __name__ == "__main__":
    main()
