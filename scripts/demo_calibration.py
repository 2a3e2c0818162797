"""`make demo-calibration`: SCTL's setting on the long-tailed digits stand-in, end to end.

1. train a CIFAR-style ResNet-20 on the CIFAR-100-LT stand-in (100 classes, rho = 100) and test it: the
   PostHocCalibration callback fits every calibrator with NLL and with class-wise loss scaling on the held-out
   calibration split and writes ``calibration.csv`` and the raw ``logits.npz``;
2. re-run the calibration on those logits alone with ``configs/cls_logits.yaml`` (no network): the same table;
3. the logits stand-in (an over-confident logistic regression on long-tailed digits) through the same config.

    python scripts/demo_calibration.py [--readme] [extra cli arguments for step 1, e.g. --trainer.max_epochs 5]

``--readme`` (what ``make demo-calibration`` passes) also writes the tables into
``lightning_modules/classification/README.md``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from demo_common import cli_run, option, pop_flag, write_report

README = "lightning_modules/classification/README.md"


def main(argv: list[str]) -> str:
    extra = list(argv)
    readme = README if pop_flag(extra, "--readme") else None
    started = time.perf_counter()
    common = ["--config", "configs/cls_cifar100_lt.yaml", "--config", "configs/demo_classification.yaml"]
    common += ["--run_name", "demo_calibration", *extra]
    cli_run(["fit", *common])
    run_dir = Path(cli_run(["test", *common, "--ckpt_path", "last"]).trainer.log_dir)
    trained = time.perf_counter() - started
    runs_dir = option(extra, "--runs_dir", "runs")
    runs = ["--runs_dir", runs_dir]
    logits = ["--config", "configs/cls_logits.yaml", *runs]
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
    parts = [
        ("ResNet-20 on the CIFAR-100-LT stand-in", run_dir),
        ("the same logits through configs/cls_logits.yaml", Path(again.trainer.log_dir)),
        ("the logits stand-in through configs/cls_logits.yaml", Path(standin.trainer.log_dir)),
    ]
    markdown = "\n".join(
        f"#### {title}\n\n" + "\n".join((folder / "calibration.md").read_text().splitlines()[2:]) + "\n"
        for title, folder in parts
    )
    markdown += (
        f"\ntraining + test: {trained / 60:.1f} min, total {(time.perf_counter() - started) / 60:.1f} min\n"
    )
    write_report(markdown, runs_dir, "demo_calibration", readme)
    return markdown


if __name__ == "__main__":
    main(sys.argv[1:])
