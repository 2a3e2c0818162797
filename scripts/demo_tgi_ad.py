"""`make demo-tgi-ad`: text-guided generation of normal images (configs/tgi_ad_generate.yaml) for the four
anomaly baselines, one-shot and few-shot (4), on the MVTec-layout stand-in: each baseline trained on the real
shots alone, on the real shots plus the generated images (its ``*_tgi`` config), and on the real shots plus as
many classically augmented copies of them (the control: does generation help more than augmentation?), image
AUROC / pixel AUROC / AUPRO (%) per category and mean; then what each generation kept per source and its
diversity gate (spread between samples against the spread between real normals, sharpness against the reals).

First the generator prior is trained once on the stand-in's photos folder (``configs/tgi_ad_prior.yaml``;
``--no_prior`` skips it). Per category, shots and seed, one generation run (overlay ``configs/demo_tgi_ad.yaml``:
128 px, the DeViSE-style scorer, a random ResNet-18 feature network), started from the prior, writes its kept
images; the four ``*_tgi`` configs read that run folder (``--data.init_args.extra_normal_dir``), the same real shots
(same data seed) and the untouched test split. The real-only runs are demo_anomaly's (same names, so runs made by
``make demo-anomaly`` are reused). ``--generation_only`` runs the prior and the generations alone, without the
baselines: the gate that comes before any claim about them. The baselines of a seed are trained only when none of
its generations fails that gate (``--ignore_gate`` trains them anyway): images that add no variety say nothing about
the paper's claim. The claims of ``benchmarks/claims.yaml`` for this demo whose seeds, regimes and runs are all
there are judged and their values recorded (``make claims`` reads them).

``--weights lite0`` (``make demo-tgi-ad-imagenet``) gives the prior, every generation and every baseline the
packaged ImageNet Lite0 (``--imagenet lite0``) and tags their runs ``_lite0``: the real-only runs are then those
of ``make demo-anomaly-imagenet``; ``--name`` and ``--demo`` name its record and the claims it judges.

    python scripts/demo_tgi_ad.py [--seeds 0] [--methods PatchCore ...] [--regimes one-shot ...]
                                  [--categories brick ...] [--steps N] [--fresh] [--retest] [--report_only]
                                  [--readme] [--no_prior] [--generation_only] [--ignore_gate]
                                  [--generation_arguments "..."] [--weights lite0] [--name N] [--demo D]
                                  [extra cli arguments for the baselines]
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import time

import yaml
from demo_anomaly import (
    DEFAULT_CATEGORIES,
    METHODS,
    METRICS,
    WEIGHTS,
    add_common_arguments,
    cell_arguments,
    fit_and_test,
    run_name,
    seed_means,
    weights_arguments,
    weights_tag,
)
from demo_common import REPO, cli_run, newest_run_file, write_report
from tgi_generations import (
    REGIMES,
    gate_failures,
    generation_json,
    generation_run,
    generation_table,
    newest_generation_json,
    prior_run,
)

from benchmarks.claims import Claim, judge_available, load_claims

README = "lightning_modules/tgi_ad/README.md"
# training set -> (config suffix, run tag): the control reads the plain config with augmented_normals
TRAINING_SETS = {
    "real": ("", ""),
    "real + generated": ("_tgi", ""),
    "real + augmented (control)": ("", "_aug"),
}
GENERATION_OVERLAY = "configs/demo_tgi_ad.yaml"


def training_set_arguments(method: str, suffix: str, tag: str, generated: str) -> list[str]:
    """The data arguments of one training set: the generation run's images for ``_tgi``; for the control as many
    augmented copies of the shots as the generation kept, balanced as the ``_tgi`` config balances its images."""
    if suffix:
        return ["--data.init_args.extra_normal_dir", generated]
    if not tag:
        return []
    kept = json.loads(newest_generation_json(generated).read_text())["kept"]
    tgi_config = yaml.safe_load((REPO / "configs" / f"{METHODS[method]}_tgi.yaml").read_text())
    balance = tgi_config["data"]["init_args"].get("real_fraction")
    return [
        "--data.init_args.augmented_normals",
        str(kept),
        "--data.init_args.real_fraction",
        "null" if balance is None else str(balance),
    ]


def run_seed(seed: int, args: argparse.Namespace, prior: list[str], extra: list[str]) -> None:
    """One seed: the generations, regime by regime, the few-shot ones first (their gate can be judged; one shot has
    no spread between reals to compare with); after a regime in which a generation failed the gate, the seed stops:
    no further generation, no baseline (unless ``--ignore_gate``; ``--generation_only`` makes every generation and
    no baseline). Then each baseline on each training set, per generation."""
    generated = {}
    for regime in sorted(args.regimes, key=lambda r: REGIMES[r] == "1"):
        for category in args.categories:
            generated[REGIMES[regime], category] = generate(category, REGIMES[regime], seed, args, prior)
        failed = [] if args.ignore_gate or args.generation_only else gate_failures(list(generated.values()))
        if failed:
            print(
                f"seed {seed}: the diversity gate fails for {'; '.join(failed)}, so no baseline (and no further "
                "generation) is run for it: the gate comes first (--ignore_gate runs them anyway)",
                flush=True,
            )
            return
    for (shots, category), folder in [] if args.generation_only else generated.items():
        for method in args.methods:
            for suffix, tag in TRAINING_SETS.values():
                more = [
                    *training_set_arguments(method, suffix, tag, folder),
                    *weights_arguments(args.weights),
                ]
                tagged = weights_tag(args.weights) + tag
                fit_and_test(METHODS[method] + suffix, category, shots, seed, args, [*more, *extra], tagged)


def generation_arguments(args: argparse.Namespace) -> list[str]:
    """The arguments of the prior and of every generation beyond the configs: the feature network's weights,
    then ``--generation_arguments``."""
    return [*weights_arguments(args.weights), *shlex.split(args.generation_arguments)]


def train_prior(args: argparse.Namespace) -> list[str]:
    """The generator prior, trained once on the stand-in's photos folder (``configs/tgi_ad_prior.yaml`` with the
    generation's overlay, so its sizes match): the generation arguments that start from it; none with
    ``--no_prior``."""
    if args.no_prior:
        return []
    prior = prior_run(args.weights)
    if args.fresh or not newest_run_file(args.runs_dir, prior, "checkpoints/last.ckpt"):
        cli_run(
            [
                "fit",
                "--config",
                "configs/tgi_ad_prior.yaml",
                "--config",
                GENERATION_OVERLAY,
                "--data.init_args.category",
                "photos",
                "--data.init_args.val_split",
                "none",
                "--run_name",
                prior,
                "--runs_dir",
                args.runs_dir,
                *generation_arguments(args),
            ]
        )
    return ["--model.init_args.prior_path", f"{args.runs_dir}/{prior}"]


def generate(category: str, shots: str, seed: int, args: argparse.Namespace, prior: list[str]) -> str:
    """Run the generation step once per (category, shots, seed); its run folder, for ``extra_normal_dir``."""
    run = generation_run(category, shots, seed, args.weights)
    if args.fresh or not newest_run_file(args.runs_dir, run, "generated"):
        cli_run(
            [
                "fit",
                "--config",
                "configs/tgi_ad_generate.yaml",
                "--config",
                GENERATION_OVERLAY,
                *cell_arguments(category, shots, seed),
                *prior,
                "--run_name",
                run,
                "--runs_dir",
                args.runs_dir,
                *generation_arguments(args),
            ]
        )
    return f"{args.runs_dir}/{run}"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_arguments(parser)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    parser.add_argument(
        "--generation_arguments",
        default="",
        help='more cli arguments for the generation runs only, one string ("--config x.yaml")',
    )
    parser.add_argument(
        "--no_prior", action="store_true", help="generate from scratch (no prior trained on other photos)"
    )
    parser.add_argument(
        "--generation_only",
        action="store_true",
        help="the prior and the generations alone (their gate), no baseline runs",
    )
    parser.add_argument(
        "--ignore_gate",
        action="store_true",
        help="train the baselines of a seed even when its generations fail the diversity gate",
    )
    parser.add_argument(
        "--weights",
        default="random",
        choices=list(WEIGHTS),
        help="the baselines' backbone and the generator's feature network (lite0: the packaged ImageNet weights)",
    )
    parser.add_argument("--name", help="the record's and the README block's name (default demo_tgi_ad)")
    parser.add_argument(
        "--demo",
        default="make demo-tgi-ad",
        help="the claims of benchmarks/claims.yaml judged on these runs (their demo field)",
    )
    args, extra = parser.parse_known_args(argv)
    started = time.perf_counter()
    prior = [] if args.report_only else train_prior(args)
    for seed in [] if args.report_only else args.seeds:
        run_seed(seed, args, prior, extra)
    markdown = report(args)
    claims_table, judged = judge_claims(args)
    if claims_table:
        markdown += "\nThe claims as `benchmarks/claims.yaml` states them:\n\n" + claims_table
    minutes = None if args.report_only else (time.perf_counter() - started) / 60
    if minutes is not None:
        markdown += f"\nRun here in {minutes:.1f} min ({len(args.seeds)} seed(s))\n"
    readme = README if args.readme else None
    write_report(markdown, args.runs_dir, args.name or "demo_tgi_ad", readme, {"claims": judged}, minutes)
    return markdown


def judge_claims(args: argparse.Namespace) -> tuple[str, dict]:
    """The verdict table of this demo's claims that this run covers (their seeds and regimes, every category)
    and whose runs all exist (none otherwise), and the values judged."""
    claims = {
        cid: claim
        for cid, claim in load_claims(demo=args.demo).items()
        if set(claim.seeds) <= set(args.seeds)
        and set(claim.extra["regimes"]) <= set(args.regimes)
        and set(args.categories) == set(DEFAULT_CATEGORIES)
    }
    return judge_available(claims, lambda claim: claim_values(args, claim), digits=3)


def claim_values(args: argparse.Namespace, claim: Claim) -> dict[str, dict[int, float]] | None:
    """Group -> seed -> the claim's ``measure`` averaged over the categories and the claim's regimes; None when a
    run it needs is missing. A baseline metric (``image_auroc``, ...) is read per group "<method> <training set>"
    from the baselines' results; a generation measure (``spread_ratio``, ``sharpness_ratio``) from
    generation.json for the treatment, against the claim's fixed ``control_value`` (the gate's bound)."""
    measure, shots = claim.extra["measure"], [REGIMES[r] for r in claim.extra["regimes"]]
    cells = [(category, s) for category in args.categories for s in shots]
    values: dict[str, dict[int, float]] = {}
    for treatment, control in claim.pairs:
        for seed in claim.seeds:
            if measure in METRICS:
                pair = {g: baseline_mean(args, g, measure, cells, seed) for g in (treatment, control)}
            else:
                pair = {
                    treatment: generation_mean(args, measure, cells, seed),
                    control: float(claim.extra["control_value"]),
                }
            if None in pair.values():
                return None
            for group, value in pair.items():
                values.setdefault(group, {})[seed] = value
    return values


def baseline_mean(
    args: argparse.Namespace, group: str, measure: str, cells: list[tuple[str, str]], seed: int
) -> float | None:
    """One baseline group's test ``measure`` at ``seed``, averaged over the (category, shots) ``cells``; None
    unless every run finished."""
    config = group_config(group, args.weights)
    per_cell = [seed_means(args.runs_dir, [run_name(config, c, s, seed)]) for c, s in cells]
    return statistics.mean(v[measure] for v in per_cell) if all(per_cell) else None


def generation_mean(
    args: argparse.Namespace, measure: str, cells: list[tuple[str, str]], seed: int
) -> float | None:
    """The generations' ``measure`` (generation.json) at ``seed``, averaged over ``cells``; None unless every
    generation finished."""
    found = [generation_json(args.runs_dir, c, s, seed, args.weights) for c, s in cells]
    if not all(found):
        return None
    return statistics.mean(json.loads(f.read_text()).get(measure, float("nan")) for f in found)


def run_config(method: str, training_set: str, weights: str = "random") -> str:
    """The run-name stem of ``method`` trained on ``training_set`` with the backbone ``weights`` (its run tag)."""
    suffix, tag = TRAINING_SETS[training_set]
    return METHODS[method] + suffix + weights_tag(weights) + tag


def group_config(group: str, weights: str = "random") -> str:
    """The run config of a claim group "<method> <training set>", e.g. "PatchCore real + generated", with the
    backbone ``weights``' run tag."""
    for method in METHODS:
        for training_set in TRAINING_SETS:
            if group == f"{method} {training_set}":
                return run_config(method, training_set, weights)
    known = [f"{m} {t}" for m in METHODS for t in TRAINING_SETS]
    raise ValueError(f"benchmarks/claims.yaml: unknown demo-tgi-ad group {group!r}; expected one of {known}")


def report(args: argparse.Namespace) -> str:
    """Per regime and metric: a row per method and training set, a column per category and their mean; one line
    instead for a regime in which no baseline trained on generated or augmented images has finished (the gate
    stopped them)."""
    lines = (
        [] if args.weights == "random" else [f"Backbone and feature network: {WEIGHTS[args.weights]}.", ""]
    )
    baseline_regimes = [] if args.generation_only else args.regimes
    for regime, shots in ((r, REGIMES[r]) for r in baseline_regimes):
        # (method, training set) -> per category, the means over the seeds (None: a run is missing), read once
        values = {
            (method, training_set): [
                seed_means(
                    args.runs_dir,
                    [
                        run_name(run_config(method, training_set, args.weights), c, shots, s)
                        for s in args.seeds
                    ],
                )
                for c in args.categories
            ]
            for method in args.methods
            for training_set in TRAINING_SETS
        }
        if not any(any(v) for (_, training_set), v in values.items() if training_set != "real"):
            lines += [
                f"**{regime}**: no baseline trained on generated or augmented images has run (the gate below "
                "comes first).",
                "",
            ]
            continue
        for metric, label in zip(METRICS, ("image AUROC", "pixel AUROC", "AUPRO"), strict=True):
            lines += [
                f"**{regime}, {label}** (%, mean over {len(args.seeds)} seed(s))",
                "",
                "| method | trained on | " + " | ".join(args.categories) + " | mean |",
                "|---|---|" + "---:|" * (len(args.categories) + 1),
            ]
            for (method, training_set), per_category in values.items():
                cells = ["—" if v is None else f"{v[metric]:.1f}" for v in per_category]
                mean = (
                    f"**{statistics.mean(v[metric] for v in per_category):.1f}**"
                    if all(per_category)
                    else "—"
                )
                lines.append(f"| {method} | {training_set} | " + " | ".join(cells) + f" | {mean} |")
            lines.append("")
    return "\n".join(lines + generation_table(args))


if __name__ == "__main__":
    main()
