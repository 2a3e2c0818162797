"""`make demo-topics`: TVQ-VAE vs ProdLDA vs LDA on gensim's shipped corpora, K = 5 and 10, three seeds:
internal NPMI, topic diversity and topic quality (all topics, and the best half as the paper's "50 %"), read
back from each run's results.csv, with example topic word lists from topics.txt.

``--readme`` (what ``make demo-topics`` passes) writes the tables into ``lightning_modules/tvqvae/README.md`` and the
evidence into ``benchmarks/demos/demo_topics.{md,json}``, with the verdicts on this demo's claims of
``benchmarks/claims.yaml`` (topic quality averaged over K, as the paper's tables average it, per corpus).

Each corpus first gets one token VQ autoencoder (configs/tvqvae_vq_pretrain.yaml, seed 42 as the official
script, ``--vq_epochs`` epochs); every TVQ-VAE run of that corpus reads it. Topic models train the configs' 500
epochs (LDA its 20 passes). All runs use ``configs/demo_topics.yaml``.

    python scripts/demo_topics.py [--seeds 1 2 3] [--topics 5 10] [--corpora mini_newsgroup lee_background]
                                  [--models TVQ-VAE ProdLDA LDA] [--report_only] [--readme] [extra cli arguments]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from demo_common import cli_run, newest_run_file, run_arguments, write_report

from benchmarks.claims import Claim, judge_available, load_claims
from lightning_modules.outputs.tables import read_result_table

README = "lightning_modules/tvqvae/README.md"

MODELS = {"TVQ-VAE": "tvqvae_20ng", "ProdLDA": "prodlda_20ng", "LDA": "lda_20ng"}
CORPORA = ("mini_newsgroup", "lee_background")
METRICS = ("npmi", "td", "tq", "npmi_50", "td_50", "tq_50")


def run_name(model: str, corpus: str, topics: int, seed: int) -> str:
    return f"demo_topics_{MODELS[model]}_{corpus}_K{topics}_seed{seed}"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--topics", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--corpora", nargs="+", default=list(CORPORA), choices=list(CORPORA))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--vq_epochs", type=int, default=200, help="token VQ autoencoder epochs")
    parser.add_argument("--report_only", action="store_true", help="rebuild the tables from finished runs")
    parser.add_argument("--runs_dir", default="runs")
    parser.add_argument("--readme", action="store_true", help=f"write the tables into {README}")
    args, extra = parser.parse_known_args(argv)
    started = time.perf_counter()
    for corpus in [] if args.report_only else args.corpora:
        vq_run = f"demo_topics_vq_{corpus}"
        if "TVQ-VAE" in args.models:
            pretrain = {"data.init_args.standin": corpus, "trainer.max_epochs": args.vq_epochs}
            configs = ["configs/tvqvae_vq_pretrain.yaml", "configs/demo_topics.yaml"]
            cli_run(["fit", *run_arguments(configs, pretrain, vq_run, args.runs_dir, extra)])
        for seed in args.seeds:
            for topics in args.topics:
                for model in args.models:
                    options: dict[str, object] = {"data.init_args.standin": corpus}
                    if model == "TVQ-VAE":
                        options["model.init_args.vq_path"] = Path(args.runs_dir) / vq_run
                    if model == "LDA":
                        options["model.init_args.seed"] = seed
                    options |= {"model.init_args.num_topics": topics, "seed_everything": seed}
                    configs = [f"configs/{MODELS[model]}.yaml", "configs/demo_topics.yaml"]
                    name = run_name(model, corpus, topics, seed)
                    common = run_arguments(configs, options, name, args.runs_dir, extra)
                    cli_run(["fit", *common])
                    cli_run(["test", *common, "--ckpt_path", "last"])
    markdown = report(args)
    claims_table, judged = judge_claims(args)
    if claims_table:
        markdown += "\nThe claims as `benchmarks/claims.yaml` states them:\n\n" + claims_table
    minutes = (time.perf_counter() - started) / 60
    if not args.report_only:
        markdown += f"\nTrained here in {minutes:.1f} min ({len(args.seeds)} seeds)\n"
    readme = README if args.readme else None
    record = {"claims": judged}
    write_report(
        markdown, args.runs_dir, "demo_topics", readme, record, None if args.report_only else minutes
    )
    return markdown


def _newest(
    args: argparse.Namespace, model: str, corpus: str, topics: int, seed: int, name: str
) -> Path | None:
    return newest_run_file(args.runs_dir, run_name(model, corpus, topics, seed), name)


def quality_over_k(args: argparse.Namespace, claim: Claim) -> dict[str, dict[int, float]] | None:
    """Model -> seed -> the claim's metric (``tq``) averaged over the claim's K on its corpus; None when a run
    it needs is missing."""
    corpus, ks, metric = claim.extra["corpus"], claim.extra["topics"], claim.extra.get("column", "tq")
    values: dict[str, dict[int, float]] = {}
    for model in {m for pair in claim.pairs for m in pair}:
        for seed in claim.seeds:
            files = [_newest(args, model, corpus, k, seed, "results.csv") for k in ks]
            if not all(files):
                return None
            per_k = [float(read_result_table(f)[0][metric]) for f in files]
            values.setdefault(model, {})[seed] = statistics.mean(per_k)
    return values


def judge_claims(args: argparse.Namespace) -> tuple[str, dict]:
    """The verdict table of this demo's claims that this run covers (its seeds, K and corpus) and whose runs all
    exist (none otherwise), and the values judged."""
    claims = {
        cid: claim
        for cid, claim in load_claims(demo="make demo-topics").items()
        if set(claim.seeds) <= set(args.seeds)
        and set(claim.extra["topics"]) <= set(args.topics)
        and claim.extra["corpus"] in args.corpora
    }
    return judge_available(claims, lambda claim: quality_over_k(args, claim), digits=3)


def report(args: argparse.Namespace) -> str:
    """Per corpus: a row per model and K, each metric's mean ± standard deviation over the seeds; then the
    first seed's K=5 topics of each model."""
    lines = []
    for corpus in args.corpora:
        lines += [
            f"**{corpus}** (internal NPMI over the corpus; mean ± sd over seeds {args.seeds})",
            "",
            "| model | K | " + " | ".join(METRICS) + " |",
            "|---|---:|" + "---:|" * len(METRICS),
        ]
        for topics in args.topics:
            for model in args.models:
                files = [_newest(args, model, corpus, topics, s, "results.csv") for s in args.seeds]
                if not all(files):
                    lines.append(f"| {model} | {topics} | " + " | ".join("—" for _ in METRICS) + " |")
                    continue
                rows = [read_result_table(f)[0] for f in files]
                cells = []
                for metric in METRICS:
                    values = [float(r[metric]) for r in rows]
                    sd = statistics.stdev(values) if len(values) > 1 else 0.0
                    cells.append(f"{statistics.mean(values):.3f} ± {sd:.3f}")
                lines.append(f"| {model} | {topics} | " + " | ".join(cells) + " |")
        lines.append("")
        topics = min(args.topics)
        for model in args.models:
            found = _newest(args, model, corpus, topics, args.seeds[0], "topics.txt")
            if found:
                lines += [
                    f"{model}, K={topics}, seed {args.seeds[0]} (best NPMI first):",
                    "",
                    "```",
                    *found.read_text().splitlines(),
                    "```",
                    "",
                ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
