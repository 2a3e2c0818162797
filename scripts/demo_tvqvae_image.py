"""`make demo-tvqvae-image`: the image TVQ-VAE on a stand-in: the VQ-VAE, then the topic model with its PixelCNN
prior; reports the VQ-VAE's test reconstruction and codebook use, the topics' purity and NMI against the stand-in's
classes (with the chance purity), and where the sample grids are (topic_samples.png: a row per topic;
reference_samples.png: a test image, then samples from its topics).

``--dataset cifar10``: the CIFAR-10-layout stand-in (digit scans painted at 32 px in random color palettes; the
classes are the digits). ``--dataset celeba64``: the CelebA-layout stand-in (LFW faces at 64 px; the classes are
the four combinations of Pale_Skin and Wearing_Hat).

    python scripts/demo_tvqvae_image.py [--dataset cifar10] [--vq_epochs 15] [--topic_epochs 20] [--topics 10]
                                        [--dim 128] [--prior_layers 15] [--report_only] [extra cli arguments]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from demo_common import cli_run, newest_run_file, write_report

from lightning_modules.outputs.tables import read_result_table


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", choices=["cifar10", "celeba64"], default="cifar10")
    parser.add_argument("--vq_epochs", type=int, default=15)
    parser.add_argument("--topic_epochs", type=int, default=20)
    parser.add_argument("--topics", type=int, default=10)
    parser.add_argument(
        "--dim", type=int, default=128, help="VQ-VAE width (the paper's 256 is 4x slower on CPU)"
    )
    parser.add_argument("--prior_layers", type=int, default=15, help="gated PixelCNN layers")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--report_only", action="store_true")
    parser.add_argument("--runs_dir", default="runs")
    args, extra = parser.parse_known_args(argv)
    started = time.perf_counter()
    overlay = ["--config", "configs/demo_tvqvae_image.yaml"]
    vq_run, topic_run = run_names(args.dataset)
    vq = [
        "--config",
        f"configs/vqvae_{args.dataset}.yaml",
        *overlay,
        "--model.init_args.dim",
        str(args.dim),
        "--trainer.max_epochs",
        str(args.vq_epochs),
        "--run_name",
        vq_run,
        "--runs_dir",
        args.runs_dir,
        *extra,
    ]
    topics = [
        "--config",
        f"configs/tvqvae_image_{args.dataset}.yaml",
        *overlay,
        "--model.init_args.vqvae_path",
        str(Path(args.runs_dir) / vq_run),
        "--model.init_args.num_topics",
        str(args.topics),
        "--trainer.max_epochs",
        str(args.topic_epochs),
        "--model.init_args.prior_layers",
        str(args.prior_layers),
        "--seed_everything",
        str(args.seed),
        "--run_name",
        topic_run,
        "--runs_dir",
        args.runs_dir,
        *extra,
    ]
    if not args.report_only:
        for command in (
            ["fit", *vq],
            ["test", *vq, "--ckpt_path", "last"],
            ["fit", *topics],
            ["test", *topics, "--ckpt_path", "last"],
        ):
            cli_run(command)
    markdown = report(args)
    if not args.report_only:
        markdown += f"\nTrained here in {(time.perf_counter() - started) / 60:.1f} min\n"
    write_report(markdown, args.runs_dir, topic_run)
    return markdown


def run_names(dataset: str) -> tuple[str, str]:
    """The VQ-VAE's and the topic model's run folders (the CIFAR-10 ones keep their first names)."""
    if dataset == "cifar10":
        return "demo_vqvae_image", "demo_tvqvae_image"
    return f"demo_vqvae_{dataset}", f"demo_tvqvae_{dataset}"


def report(args: argparse.Namespace) -> str:
    vq_run, topic_run = run_names(args.dataset)
    vq = read_result_table(newest_run_file(args.runs_dir, vq_run, "results.csv", required=True))[0]
    topics_file = newest_run_file(args.runs_dir, topic_run, "results.csv", required=True)
    topics = read_result_table(topics_file)[0]
    return "\n".join(
        [
            f"{args.dataset} stand-in. Image VQ-VAE (width {args.dim}, 512 codes, {args.vq_epochs} epochs), test split: reconstruction MSE "
            f"{float(vq['mse']):.4f} on [-1, 1] pixels, codebook perplexity {float(vq['perplexity']):.1f}, "
            f"{float(vq['codes_used']):.0f} codes used",
            "",
            "| topics K | epochs | purity | NMI | chance purity (one cluster) |",
            "|---:|---:|---:|---:|---:|",
            f"| {args.topics} | {args.topic_epochs} | {float(topics['purity']):.3f} | {float(topics['nmi']):.3f} | "
            f"{float(topics['chance_purity']):.3f} |",
            "",
            f"Sample grids: {topics_file.parent / 'topic_samples.png'} (a row per topic), "
            f"{topics_file.parent / 'reference_samples.png'} (a test image, then 4 samples from its topic mixture)",
        ]
    )


if __name__ == "__main__":
    main()
