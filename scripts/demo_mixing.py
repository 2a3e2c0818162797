"""`make demo-mixing`: baseline vs Mixup vs CutMix vs DMixup vs DCutMix on Fashion-MNIST's low-data regime.

Every run is the method's CIFAR-100 config with ``configs/demo_mixing_fmnist.yaml`` (100 training images per
class, ResNet-20, one recipe for every method); the baseline is the DCutMix config with mixing switched off
(``prob 0``). Each run is fitted, then tested on the 10,000 test images from its last checkpoint; the training
images' error (no augmentation, no mixing) is measured too, to show how much each model overfits.

``--select`` first picks the recipe on the validation split (600 held-out training images), seed 0, every
method, over the candidate learning rates: the rule, fixed before the runs, is the candidate whose worst method
has the lowest validation error (every method must train), ties broken by the mean. The chosen candidate's
arguments go on every run's command line (the overlay as written is lr 0.1). The claims
(``benchmarks/claims.yaml``, written before the runs) are judged on the test errors of seeds 0, 1, 2. Finished
runs are reused (a rerun only tests them again); ``--recipe`` names the candidate an earlier ``--select`` chose,
to run the seeds without selecting again.

    python scripts/demo_mixing.py [--select | --recipe "lr 0.03"] [--readme] [--seeds 0 1 2] [--methods ...] [extra cli arguments]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml
from demo_common import REPO, cli_run, newest_run_file, scalar_curve, write_report

from lightning_modules.metrics.detection import auroc

sys.path.insert(0, str(REPO))
from benchmarks.claims import claims_section, load_claims, mean_sd  # noqa: E402

README = "lightning_modules/classification/README.md"
OVERLAY = "configs/demo_mixing_fmnist.yaml"
METHODS = {
    "baseline": ("dcutmix", ["--trainer.callbacks.prob", "0.0"]),
    "mixup": ("mixup", []),
    "cutmix": ("cutmix", []),
    "dmixup": ("dmixup", []),
    "dcutmix": ("dcutmix", []),
}
# recipes --select compares on validation; "overlay" is the overlay as written (lr 0.1)
CANDIDATES = {"overlay": [], "lr 0.03": ["--model.init_args.lr", "0.03"]}


def run_args(method: str, seed: int, name: str, runs_dir: str, extra: list[str]) -> list[str]:
    config, options = METHODS[method]
    return [
        "--config",
        f"configs/{config}_cifar100.yaml",
        "--config",
        OVERLAY,
        "--seed_everything",
        str(seed),
        "--data.init_args.seed",
        str(seed),
        "--run_name",
        name,
        "--runs_dir",
        runs_dir,
        *options,
        *extra,
    ]


def fit_or_reuse(args: list[str], runs_dir: str, name: str) -> float:
    """Fit unless a finished run of that name exists (an unfinished one is resumed); the last epoch's
    validation error (%)."""
    checkpoint = newest_run_file(runs_dir, name, "checkpoints/last.ckpt")
    if checkpoint is not None:
        run_dir = checkpoint.parent.parent
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
        planned = yaml.safe_load((run_dir / "config.yaml").read_text())["trainer"]["max_epochs"]
        if saved["epoch"] + 1 >= planned:
            print(f"\n(reusing {run_dir})", flush=True)
            return _last_val_err(run_dir)
        args = [*args, "--ckpt_path", "last"]  # an interrupted run continues where it stopped
    fit = cli_run(["fit", *args])
    return 100 * float(fit.trainer.callback_metrics["val/err"])


def _last_val_err(run_dir: Path) -> float:
    """The last validation error (%) a finished run logged to TensorBoard."""
    return 100 * scalar_curve(run_dir, "val/err")[-1]


def test_and_train_error(args: list[str], runs_dir: str, name: str) -> tuple[float, float]:
    """Test error (%) from the last checkpoint, and the error on the training images without augmentation."""
    test = cli_run(["test", *args, "--ckpt_path", "last"])
    test_err = 100 * float(test.trainer.callback_metrics["test/err"])
    data, model = test.datamodule, test.model.eval()
    train = data.datasets["train"]
    plain = type(train)(train.images, train.labels, train.names, data.eval_transform(), train.tag)
    wrong = 0
    with torch.no_grad():
        for batch in data.make_loader(plain, train=False):
            wrong += int((model.logits(batch).argmax(1) != batch["label"]).sum())
    return test_err, 100 * wrong / len(plain)


def select(methods: list[str], runs_dir: str, extra: list[str]) -> tuple[str, str]:
    """Validation error of every method under every candidate recipe (seed 0): the table and the rule's choice."""
    errors = {c: {} for c in CANDIDATES}
    for candidate, options in CANDIDATES.items():
        for method in methods:
            name = _name(method, 0, candidate)
            errors[candidate][method] = fit_or_reuse(
                run_args(method, 0, name, runs_dir, [*options, *extra]), runs_dir, name
            )
    choice = min(errors, key=lambda c: (max(errors[c].values()), statistics.mean(errors[c].values())))
    lines = [
        "| recipe | " + " | ".join(methods) + " | worst | mean |",
        "|---|" + "---:|" * (len(methods) + 2),
    ]
    for candidate, values in errors.items():
        row = [f"{values[m]:.2f}" for m in methods]
        lines.append(
            f"| {candidate}{' (chosen)' if candidate == choice else ''} | {' | '.join(row)} | "
            f"{max(values.values()):.2f} | {statistics.mean(values.values()):.2f} |"
        )
    markdown = (
        "Validation error (%, last epoch, seed 0) per candidate recipe; the rule picks the lowest worst-method "
        f"error: **{choice}**.\n\n" + "\n".join(lines) + "\n"
    )
    return markdown, choice


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--runs_dir", default="runs")
    parser.add_argument("--select", action="store_true", help="compare the candidate recipes first")
    parser.add_argument(
        "--recipe",
        choices=list(CANDIDATES),
        help="the recipe an earlier --select chose (its table is in the README), without selecting again",
    )
    parser.add_argument("--readme", action="store_true", help=f"write the tables into {README}")
    args, extra = parser.parse_known_args(argv)
    started = time.perf_counter()
    readme = README if args.readme else None
    recipe = args.recipe or "overlay"
    if args.select:
        table, recipe = select(args.methods, args.runs_dir, extra)
        write_report(table, args.runs_dir, "demo_mixing_selection", readme)
    extra = [*CANDIDATES[recipe], *extra]
    test_errors: dict[str, dict[int, float]] = {m: {} for m in args.methods}
    train_errors: dict[str, dict[int, float]] = {m: {} for m in args.methods}
    for seed in args.seeds:
        for method in args.methods:
            name = _name(method, seed, recipe)
            common = run_args(method, seed, name, args.runs_dir, extra)
            fit_or_reuse(common, args.runs_dir, name)
            test_errors[method][seed], train_errors[method][seed] = test_and_train_error(
                common, args.runs_dir, name
            )
    lines = [
        "| method | test error (%) | training images' error (%) | per seed (test) |",
        "|---|---:|---:|---|",
    ]
    for method in args.methods:
        per_seed = " / ".join(f"{test_errors[method][s]:.2f}" for s in args.seeds)
        lines.append(
            f"| {method} | {mean_sd(list(test_errors[method].values()))} | "
            f"{mean_sd(list(train_errors[method].values()))} | {per_seed} |"
        )
    markdown = (
        f"Recipe: {recipe} ({' '.join(CANDIDATES[recipe]) or OVERLAY + ' as written'}). Mean ± sd over seeds "
        f"{', '.join(map(str, args.seeds))} (last epoch; the seed draws the 100 images per class too):\n\n"
        + "\n".join(lines)
        + "\n"
    )
    claims = load_claims(demo="make demo-mixing")
    claims = {k: c for k, c in claims.items() if _covers(c, test_errors, args.seeds)}
    judged = {}
    if claims:
        table, judged = claims_section(claims, lambda claim: test_errors)
        markdown += "\n" + table
    if "dcutmix" in args.methods:
        markdown += "\n" + predict_uncertainty(
            run_args("dcutmix", args.seeds[0], _name("dcutmix", args.seeds[0], recipe), args.runs_dir, extra)
        )
    minutes = (time.perf_counter() - started) / 60
    markdown += (
        f"\n{len(args.seeds)} seeds x {len(args.methods)} methods: {minutes:.1f} min (finished runs reused)\n"
    )
    record = {"recipe": recipe, "test_error": test_errors, "train_error": train_errors, "claims": judged}
    write_report(markdown, args.runs_dir, "demo_mixing", readme, record, minutes)
    return markdown


def predict_uncertainty(common: list[str]) -> str:
    """AUROC of the mix uncertainty (and of 1 - confidence) for misclassified vs correct test images."""
    predict = cli_run(["predict", *common, "--ckpt_path", "last"])
    with open(Path(predict.trainer.log_dir) / "predictions.csv") as handle:
        rows = list(csv.DictReader(handle))
    wrong = torch.tensor([int(r["pred_label"]) != int(r["label"]) for r in rows]).long()
    mix = torch.tensor([float(r["mix_uncertainty"]) for r in rows])
    plain = 1 - torch.tensor([float(r["confidence"]) for r in rows])
    if wrong.sum() in (0, len(wrong)):
        return "uncertainty AUROC: undefined (no or only misclassified test images)\n"
    return (
        f"DCutMix (seed {common[common.index('--seed_everything') + 1]}) on {len(rows)} test images, "
        f"{int(wrong.sum())} misclassified: AUROC of `mix_uncertainty` for finding them "
        f"{100 * auroc(mix, wrong):.1f} %, of `1 - confidence` {100 * auroc(plain, wrong):.1f} %.\n"
    )


def _covers(claim, values: dict[str, dict[int, float]], seeds: list[int]) -> bool:
    """Whether this run measured every group and seed the claim needs (a partial run judges nothing)."""
    groups = {g for pair in claim.pairs for g in pair}
    return groups <= set(values) and set(claim.seeds) <= set(seeds)


def _name(method: str, seed: int, recipe: str) -> str:
    """demo_mixing_<method>_seed<seed> for the overlay's recipe, with the candidate's name for another."""
    tag = "" if recipe == "overlay" else recipe.replace(" ", "").replace(".", "p") + "_"
    return f"demo_mixing_{tag}{method}_seed{seed}"


if __name__ == "__main__":
    main()
