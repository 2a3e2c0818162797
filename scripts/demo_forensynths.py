"""`make demo`: train the ForenSynths detectors on the stand-in, test them, and compare them in one table.

Each method runs exactly what a user would type (printed before it runs):

    python cli.py fit  --config configs/<method>.yaml --config configs/demo.yaml --run_name demo_<method> [args]
    python cli.py test --config configs/<method>.yaml --config configs/demo.yaml --run_name demo_<method> [args] --ckpt_path last

with the method's own demo arguments (FrePGAN: a narrower generator and discriminator, so that its three
networks train in CPU minutes), then every ``results*.csv`` is joined into ``runs/demo_forensynths.md``.
FrePGAN is tested twice: as trained (C on x + G(x)) and with ``test_perturb false`` (C alone). Extra arguments
are passed to every cli call (e.g. ``--trainer.max_epochs 2`` for a quicker look); ``--only m1,m2`` picks methods.
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
