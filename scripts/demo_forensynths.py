"""`make demo`: train the CNNDetection baseline and BiHPF on the ForenSynths stand-in, test both, compare.

Each method runs exactly what a user would type (printed before it runs):

    python cli.py fit  --config configs/<method>.yaml --config configs/demo.yaml --run_name demo_<method>
    python cli.py test --config configs/<method>.yaml --config configs/demo.yaml --run_name demo_<method> --ckpt_path last

then the two ``results.csv`` are joined into ``runs/demo_forensynths.md``. Extra arguments are passed to every
cli call (e.g. ``--trainer.max_epochs 2`` for a quicker look).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cli  # noqa: E402
from lightning_modules.common.results import compare_tables, read_result_table  # noqa: E402

METHODS = ("cnndetection", "bihpf")


def main(extra: list[str]) -> None:
    tables, timings = {}, {}
    for method in METHODS:
        common = [
            "--config",
            f"configs/{method}.yaml",
            "--config",
            "configs/demo.yaml",
            "--run_name",
            f"demo_{method}",
        ]
        started = time.perf_counter()
        for stage in ("fit", "test"):
            argv = [stage, *common, *extra] + (["--ckpt_path", "last"] if stage == "test" else [])
            print("\n$ python cli.py " + " ".join(argv), flush=True)
            run = cli.main(argv)
        timings[method] = time.perf_counter() - started
        tables[method] = read_result_table(Path(run.trainer.log_dir) / "results.csv")
    title = "ForenSynths stand-in: ACC / AP (%) per generator family, trained on `transconv` only"
    markdown = compare_tables(tables, ("acc", "ap"), title)
    markdown += "\n" + ", ".join(f"{m}: {t / 60:.1f} min" for m, t in timings.items()) + " (fit + test)\n"
    out = REPO / "runs" / "demo_forensynths.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(markdown)
    print("\n" + markdown + f"\n(written to {out})")


if __name__ == "__main__":
    main(sys.argv[1:])
