"""`make demo-styleflow`: Style Latent Flows on the FF++-layout stand-in, leave one manipulation out.

For each manipulation held out of training (and validation): StyleGRU (stage 1, triplets), then the stage-2
detector content-only and content + style (the frozen StyleGRU through the style attention module). All are
tested on every manipulation at video level (σ of the mean clip logit, each manipulation's videos against the
original videos); the table's comparison is the AUC on the held-out one. Style latents come from the stand-in
face autoencoder (trained once, on real training frames), not pSp. Sizes are CPU-sized (``SIZES``).

    python scripts/demo_styleflow.py [--held_out Deepfakes ...] [--seeds 1] [--report_only] [extra cli arguments]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from demo_common import cli_run, newest_run_file, write_report

from benchmarks.claims import mean_sd
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


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--held_out", nargs="+", default=list(MANIPULATIONS), choices=list(MANIPULATIONS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--report_only", action="store_true", help="rebuild the table from finished runs")
    parser.add_argument("--runs_dir", default="runs")
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
        cli_run(["fit", *autoencoder])
        cli_run(["test", *autoencoder, "--ckpt_path", "last"])
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
            for command in ("fit", "test"):
                cli_run([command, *stage1, *(["--ckpt_path", "last"] if command == "test" else [])])
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
                cli_run(["fit", *stage2])
                cli_run(["test", *stage2, "--ckpt_path", "last"])
    markdown = report(args)
    if not args.report_only:
        markdown += f"\nTrained here in {(time.perf_counter() - started) / 60:.1f} min\n"
    write_report(markdown, args.runs_dir, "demo_styleflow")
    return markdown


def run_name(tag: str, held: str, seed: int) -> str:
    return f"demo_styleflow_{tag}_without_{held}_seed{seed}"


def report(args: argparse.Namespace) -> str:
    """Video AUC (%) on the held-out manipulation and the mean over the seen ones, per detector."""
    lines = [
        "| held out | " + " | ".join(f"{d}: unseen / seen AUC" for d in DETECTORS) + " |",
        "|---|" + "---:|" * len(DETECTORS),
    ]
    unseen_means: dict[str, list[float]] = {d: [] for d in DETECTORS}
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
                seen.append(statistics.mean(float(rows[m]["auc"]) for m in MANIPULATIONS if m != held))
            unseen_means[detector].append(statistics.mean(unseen))
            cells.append(f"{mean_sd(unseen, digits=1)} / {mean_sd(seen, digits=1)}")
        lines.append(f"| {held} | " + " | ".join(cells) + " |")
    lines.append(
        "| **mean unseen** | "
        + " | ".join(f"**{statistics.mean(v):.1f}**" for v in unseen_means.values())
        + " |"
    )
    return "\n".join(lines) + f"\n\nVideo-level AUC (%), σ(mean clip logit); seeds {args.seeds}.\n"


if __name__ == "__main__":
    main()
