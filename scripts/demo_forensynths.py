"""`make demo`: train the ForenSynths detectors on the stand-in, test them, and compare them in one table.

Each method runs exactly what a user would type (printed before it runs):

    python cli.py fit  --config configs/<m>.yaml --config configs/demo.yaml --run_name demo_<m> [args]
    python cli.py test --config configs/<m>.yaml --config configs/demo.yaml --run_name demo_<m> [args] --ckpt_path last

with the method's own demo arguments (FrePGAN: a narrower generator and discriminator, so that its three
networks train in CPU minutes; FingerprintNet: smaller autoencoders, trained first), then every
``results*.csv`` is joined into ``runs/demo_forensynths.md``. FrePGAN is tested twice: as trained (C on
x + s * G(x)) and with ``test_perturb false`` (C alone).

    python scripts/demo_forensynths.py [--only cnndetection,bihpf] [extra cli arguments, e.g. --trainer.max_epochs 2]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from demo_common import cli_run, option, write_report

from lightning_modules.outputs.tables import compare_tables, read_result_table

# method -> its own demo arguments (after the overlays, so they win)
METHODS: dict[str, list[str]] = {
    "cnndetection": [],
    "bihpf": [],
    "frepgan": [
        "--model.init_args.generator_width",
        "8",
        "--model.init_args.generator_blocks",
        "2",
        "--model.init_args.discriminator_width",
        "16",
    ],
    # depths 1-3 (56 px crops are not divisible by 16), narrower autoencoders, 3 autoencoder epochs first so
    # the detector also trains 6; the stand-in's reals are PNG, so pseudo-fakes are not JPEG re-encoded
    "fingerprintnet": [
        "--model.init_args.ae_stages",
        "[1, 2, 3]",
        "--model.init_args.ae_width",
        "64",
        "--model.init_args.ae_epochs",
        "3",
        "--model.init_args.fake_jpeg_quality",
        "null",
        "--trainer.max_epochs",
        "9",
    ],
}
# method -> extra test passes: (table column name, arguments, results file stem)
EXTRA_TESTS = {
    "frepgan": [("frepgan C alone", ["--model.init_args.test_perturb", "false"], "results_unperturbed")]
}
TITLE = "ForenSynths stand-in: ACC / AP (%) per generator family, trained on `transconv` only"


def main(argv: list[str]) -> str:
    extra = list(argv)
    only = list(METHODS)
    if "--only" in extra:
        at = extra.index("--only")
        only = extra[at + 1].split(",")
        del extra[at : at + 2]
        unknown = sorted(set(only) - set(METHODS))
        if unknown:
            raise SystemExit(f"--only: unknown methods {unknown}; choose from {list(METHODS)}")
    tables, timings = {}, {}
    for method in only:
        common = ["--config", f"configs/{method}.yaml", "--config", "configs/demo.yaml"]
        common += ["--run_name", f"demo_{method}", *METHODS[method], *extra]
        started = time.perf_counter()
        cli_run(["fit", *common])
        run_dir = Path(cli_run(["test", *common, "--ckpt_path", "last"]).trainer.log_dir)
        tables[method] = read_result_table(run_dir / "results.csv")
        for name, arguments, stem in EXTRA_TESTS.get(method, []):
            cli_run(["test", *common, *arguments, "--ckpt_path", "last"])
            tables[name] = read_result_table(run_dir / f"{stem}.csv")
        timings[method] = time.perf_counter() - started
    markdown = compare_tables(tables, ("acc", "ap"), TITLE)
    markdown += "\n" + ", ".join(f"{m}: {t / 60:.1f} min" for m, t in timings.items()) + " (fit + test)\n"
    write_report(markdown, option(extra, "--runs_dir", "runs"), "demo_forensynths")
    return markdown


if __name__ == "__main__":
    main(sys.argv[1:])
