"""`make demo-styleflow`: Style Latent Flows on the FF++-layout stand-in, leave one manipulation out.

For each manipulation held out of training (and validation): StyleGRU (stage 1, triplets), then the stage-2
detector content-only and content + style (the frozen StyleGRU through the style attention module). All are
tested on every manipulation at video level (σ of the mean clip logit, each manipulation's videos against the
original videos); the table's comparison is the AUC on the held-out one. Style latents come from the stand-in
face autoencoder (trained once, on real training frames), not pSp. Sizes are CPU-sized (``SIZES``).

The claim of ``benchmarks/claims.yaml`` for this demo (content + style above content only on the held-out
manipulation, judged per seed on the mean over the folds) is judged when every fold and seed it names ran;
StyleGRU alone (the stage-1 model with its own head) is reported beside it as what it is, not as a claim.

    python scripts/demo_styleflow.py [--held_out Deepfakes ...] [--seeds 1 2 3] [--report_only] [--readme]
        [extra cli arguments]

``--readme`` (what ``make demo-styleflow`` passes) writes the table into ``lightning_modules/styleflow/README.md``
and the evidence into ``benchmarks/demos/``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from demo_common import cli_run, newest_run_file, write_report

from benchmarks.claims import claims_section, load_claims, mean_sd
from datamodules.standins.faceforensics import MANIPULATIONS
from lightning_modules.outputs.tables import read_result_table

OVERLAY = ["--config", "configs/demo_styleflow.yaml"]
SIZES = {
    "face_autoencoder": [
        "--model.init_args.width",
        "32",
        "--model.init_args.num_layers",
        "4",
        "--model.init_args.layer_dim",
        "32",
        "--trainer.max_epochs",
        "15",
    ],
    "stylegru": [
        "--model.init_args.hidden",
        "128",
        "--model.init_args.head_hidden",
        "128",
        "--data.init_args.triplets_per_epoch",
        "2000",
        "--data.init_args.batch_size",
        "64",
        "--trainer.max_epochs",
        "10",
    ],
    "styleflow": [
        "--model.init_args.content_backbone",
        "small3d",
        "--model.init_args.content_width",
        "16",
        "--model.init_args.dim",
        "64",
        "--model.init_args.style_tokens",
        "4",
        "--model.init_args.depth",
        "2",
        "--model.init_args.heads",
        "4",
        "--model.init_args.mlp_dim",
        "128",
        "--model.init_args.lr",
        "3e-4",
        "--trainer.max_epochs",
        "12",
    ],
}
DETECTORS = {"StyleGRU alone": "stylegru", "content only": "content", "content + style": "styleflow"}
README = "lightning_modules/styleflow/README.md"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--held_out", nargs="+", default=list(MANIPULATIONS), choices=list(MANIPULATIONS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--report_only", action="store_true", help="rebuild the table from finished runs")
    parser.add_argument("--runs_dir", default="runs")
    parser.add_argument("--readme", action="store_true", help=f"write the table into {README}")
    args, extra = parser.parse_known_args(argv)
    started = time.perf_counter()
    runs = Path(args.runs_dir)
    encoder = runs / "demo_face_autoencoder"
    if not args.report_only:
        autoencoder = [
            "--config",
            "configs/face_autoencoder.yaml",
            *OVERLAY,
            *SIZES["face_autoencoder"],
            "--run_name",
            "demo_face_autoencoder",
            "--runs_dir",
            args.runs_dir,
            *extra,
        ]
        fit_and_test(autoencoder, runs, "demo_face_autoencoder")
    for seed in [] if args.report_only else args.seeds:
        for held in args.held_out:
            common = [
                *OVERLAY,
                "--data.init_args.held_out",
                f"[{held}]",
                "--model.init_args.style_encoder",
                str(encoder),
                "--seed_everything",
                str(seed),
                "--runs_dir",
                args.runs_dir,
            ]
            stage1 = [
                "--config",
                "configs/stylegru.yaml",
                *common,
                *SIZES["stylegru"],
                "--run_name",
                run_name("stylegru", held, seed),
                *extra,
            ]
            fit_and_test(stage1, runs, run_name("stylegru", held, seed))
            for tag, style in (
                ("content", ["--model.init_args.use_style", "false"]),
                (
                    "styleflow",
                    ["--model.init_args.stylegru_path", str(runs / run_name("stylegru", held, seed))],
                ),
            ):
                stage2 = [
                    "--config",
                    "configs/styleflow.yaml",
                    *common,
                    *SIZES["styleflow"],
                    *style,
                    "--run_name",
                    run_name(tag, held, seed),
                    *extra,
                ]
                fit_and_test(stage2, runs, run_name(tag, held, seed))
    markdown, unseen = report(args)
    judged: dict = {}
    claims = load_claims(demo="make demo-styleflow")
    if (
        claims
        and set(args.held_out) == set(MANIPULATIONS)
        and set(args.seeds) >= {s for c in claims.values() for s in c.seeds}
    ):
        table, judged = claims_section(claims, lambda claim: unseen, digits=1)
        alone, full = unseen["StyleGRU alone"], unseen["content + style"]
        wins = sum(full[s] > alone[s] for s in args.seeds)
        markdown += f"\n{table}\nNot a claim, reported as it is: StyleGRU alone "
        markdown += (
            f"{mean_sd(list(alone.values()), 1)} vs content + style {mean_sd(list(full.values()), 1)} "
        )
        markdown += f"(content + style higher in {wins} / {len(args.seeds)} seeds).\n"
    minutes = (time.perf_counter() - started) / 60
    if not args.report_only:
        markdown += f"\nTrained here in {minutes:.1f} min (finished runs reused)\n"
    record = {"groups": unseen, "claims": judged}
    readme = README if args.readme else None
    write_report(
        markdown, args.runs_dir, "demo_styleflow", readme, record, None if args.report_only else minutes
    )
    return markdown


def fit_and_test(arguments: list[str], runs: Path, name: str) -> None:
    """Fit, then test from the last checkpoint, unless run ``name`` already has its test table (a stopped
    ``make reproduce`` continues where it stopped)."""
    if newest_run_file(runs, name, "results.csv") is None:
        cli_run(["fit", *arguments])
        cli_run(["test", *arguments, "--ckpt_path", "last"])


def run_name(tag: str, held: str, seed: int) -> str:
    return f"demo_styleflow_{tag}_without_{held}_seed{seed}"


def report(args: argparse.Namespace) -> tuple[str, dict[str, dict[int, float]]]:
    """Video AUC (%) on the held-out manipulation and the mean over the seen ones, per detector; and per detector
    and seed, the held-out AUC averaged over the folds (what the claim is judged on)."""
    lines = [
        "| held out | " + " | ".join(f"{d}: unseen / seen AUC" for d in DETECTORS) + " |",
        "|---|" + "---:|" * len(DETECTORS),
    ]
    unseen_means: dict[str, list[float]] = {d: [] for d in DETECTORS}
    per_seed: dict[str, dict[int, list[float]]] = {d: {s: [] for s in args.seeds} for d in DETECTORS}
    for held in args.held_out:
        cells = []
        for detector, tag in DETECTORS.items():
            unseen, seen = [], []
            for seed in args.seeds:
                rows = {
                    str(r["group"]): r
                    for r in read_result_table(
                        newest_run_file(
                            args.runs_dir, run_name(tag, held, seed), "results.csv", required=True
                        )
                    )
                }
                unseen.append(float(rows[held]["auc"]))
                per_seed[detector][seed].append(unseen[-1])
                seen.append(statistics.mean(float(rows[m]["auc"]) for m in MANIPULATIONS if m != held))
            unseen_means[detector].append(statistics.mean(unseen))
            cells.append(f"{mean_sd(unseen, digits=1)} / {mean_sd(seen, digits=1)}")
        lines.append(f"| {held} | " + " | ".join(cells) + " |")
    lines.append(
        "| **mean unseen** | "
        + " | ".join(f"**{statistics.mean(v):.1f}**" for v in unseen_means.values())
        + " |"
    )
    folds = {d: {s: statistics.mean(v) for s, v in seeds.items()} for d, seeds in per_seed.items()}
    return "\n".join(lines) + f"\n\nVideo-level AUC (%), σ(mean clip logit); seeds {args.seeds}.\n", folds


if __name__ == "__main__":
    main()
