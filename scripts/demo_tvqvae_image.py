"""`make demo-tvqvae-image`: the image TVQ-VAE — the VQ-VAE once, then the topic model with its PixelCNN prior per
seed; reports the VQ-VAE's test reconstruction and codebook use, the topics' purity and NMI against the classes
beside the one-cluster chance purity and a baseline over the same code maps (KMeans, K = topics, on each image's
code shares), and where the sample grids are (topic_samples.png: a row per topic; reference_samples.png: a test
image, then samples from its topics).

``--dataset fashion_mnist`` (the default): the real Fashion-MNIST through ``configs/demo_tvqvae_image_fmnist.yaml``
(10 % of the training images; the classes are the ten garments); its claims (``benchmarks/claims.yaml``, written
before the runs) are judged over seeds 0, 1, 2. ``cifar10``: the CIFAR-10-layout digits stand-in (scans painted in
random color palettes). ``celeba64``: the CelebA-layout stand-in (LFW faces at 64 px; the classes are the four
combinations of Pale_Skin and Wearing_Hat). Finished runs are reused.

    python scripts/demo_tvqvae_image.py [--dataset fashion_mnist] [--seeds 0 1 2] [--vq_epochs 15]
        [--topic_epochs 20] [--topics 10] [--dim 128] [--prior_layers 15] [--readme] [extra cli arguments]
"""

from __future__ import annotations

import argparse
import sys
import time

from demo_common import REPO, cli_run, newest_run_file, run_arguments, write_report

from lightning_modules.outputs.tables import read_result_table

sys.path.insert(0, str(REPO))
from benchmarks.claims import claims_section, load_claims, mean_sd  # noqa: E402

README = "lightning_modules/tvqvae/README.md"
# dataset -> (the configs' suffix, the overlay that brings the data)
DATASETS = {
    "fashion_mnist": ("cifar10", "configs/demo_tvqvae_image_fmnist.yaml"),
    "cifar10": ("cifar10", "configs/demo_tvqvae_image.yaml"),
    "celeba64": ("celeba64", "configs/demo_tvqvae_image.yaml"),
}
COLUMNS = ("purity", "nmi", "code_kmeans_purity", "code_kmeans_nmi", "chance_purity")


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", choices=list(DATASETS), default="fashion_mnist")
    parser.add_argument(
        "--seeds", type=int, nargs="+", help="topic-model seeds (default 0 1 2 on Fashion-MNIST, else 1)"
    )
    parser.add_argument("--vq_epochs", type=int, default=15)
    parser.add_argument("--topic_epochs", type=int, default=20)
    parser.add_argument("--topics", type=int, default=10)
    parser.add_argument(
        "--dim", type=int, default=128, help="VQ-VAE width (the paper's 256 is 4x slower on CPU)"
    )
    parser.add_argument("--prior_layers", type=int, default=15, help="gated PixelCNN layers")
    parser.add_argument("--runs_dir", default="runs")
    parser.add_argument("--readme", action="store_true", help=f"write the table into {README}")
    args, extra = parser.parse_known_args(argv)
    seeds = args.seeds or ([0, 1, 2] if args.dataset == "fashion_mnist" else [1])
    started = time.perf_counter()
    suffix, overlay = DATASETS[args.dataset]
    vq_run = f"demo_vqvae_{args.dataset}"
    pretrain = {"model.init_args.dim": args.dim, "trainer.max_epochs": args.vq_epochs}
    vq = run_arguments([f"configs/vqvae_{suffix}.yaml", overlay], pretrain, vq_run, args.runs_dir, extra)
    fit_and_test(vq, args.runs_dir, vq_run)
    for seed in seeds:
        topic_run = f"demo_tvqvae_{args.dataset}_seed{seed}"
        options = {
            "model.init_args.vqvae_path": f"{args.runs_dir}/{vq_run}",
            "model.init_args.num_topics": args.topics,
            "model.init_args.prior_layers": args.prior_layers,
            "trainer.max_epochs": args.topic_epochs,
            "seed_everything": seed,
        }
        configs = [f"configs/tvqvae_image_{suffix}.yaml", overlay]
        topics = run_arguments(configs, options, topic_run, args.runs_dir, extra)
        fit_and_test(topics, args.runs_dir, topic_run)
    markdown, record = report(args, seeds)
    minutes = (time.perf_counter() - started) / 60
    markdown += f"\n{minutes:.1f} min (finished runs reused)\n"
    readme = README if args.readme else None
    write_report(markdown, args.runs_dir, f"demo_tvqvae_{args.dataset}", readme, record, minutes)
    return markdown


def fit_and_test(args: list[str], runs_dir: str, name: str) -> None:
    """Fit and test unless the run's results.csv exists already."""
    if newest_run_file(runs_dir, name, "results.csv") is None:
        cli_run(["fit", *args])
        cli_run(["test", *args, "--ckpt_path", "last"])


def report(args: argparse.Namespace, seeds: list[int]) -> tuple[str, dict]:
    """The tables, and what they were made of (per-seed rows, the values each claim was judged on)."""
    vq = read_result_table(
        newest_run_file(args.runs_dir, f"demo_vqvae_{args.dataset}", "results.csv", required=True)
    )
    files = {
        s: newest_run_file(args.runs_dir, f"demo_tvqvae_{args.dataset}_seed{s}", "results.csv", required=True)
        for s in seeds
    }
    rows = {s: read_result_table(f)[0] for s, f in files.items()}
    lines = [
        f"{args.dataset}: image VQ-VAE (width {args.dim}, 512 codes, {args.vq_epochs} epochs), test split: "
        f"reconstruction MSE {float(vq[0]['mse']):.4f} on [-1, 1] pixels, codebook perplexity "
        f"{float(vq[0]['perplexity']):.1f}, {float(vq[0]['codes_used']):.0f} codes used. Topic model: K = "
        f"{args.topics}, {args.topic_epochs} epochs, on the test images:",
        "",
        "| seed | topics: purity | topics: NMI | code KMeans: purity | code KMeans: NMI | chance purity (one cluster) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for seed, row in rows.items():
        lines.append(f"| {seed} | " + " | ".join(f"{float(row[c]):.3f}" for c in COLUMNS) + " |")
    if len(seeds) > 1:
        means = [mean_sd([float(rows[s][c]) for s in seeds], digits=3) for c in COLUMNS]
        lines.append("| mean ± sd | " + " | ".join(means) + " |")
    lines += [
        "",
        f"Sample grids: {files[seeds[0]].parent / 'topic_samples.png'} (a row per topic), "
        f"{files[seeds[0]].parent / 'reference_samples.png'} (a test image, then samples from its topic mixture)",
        "",
    ]
    claims = load_claims(demo="make demo-tvqvae-image") if args.dataset == "fashion_mnist" else {}
    if claims and set(seeds) >= {s for c in claims.values() for s in c.seeds}:
        purity = {
            "topics": {s: float(r["purity"]) for s, r in rows.items()},
            "code KMeans": {s: float(r["code_kmeans_purity"]) for s, r in rows.items()},
            "chance": {s: float(r["chance_purity"]) for s, r in rows.items()},
        }
        nmi = {
            "topics": {s: float(r["nmi"]) for s, r in rows.items()},
            "code KMeans": {s: float(r["code_kmeans_nmi"]) for s, r in rows.items()},
        }
        table, judged = claims_section(claims, lambda c: nmi if "NMI" in c.metric else purity, digits=3)
        lines.append(table)
    else:
        judged = {}
    return "\n".join(lines), {"rows": rows, "claims": judged}


if __name__ == "__main__":
    main()
