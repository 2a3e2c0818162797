"""`make bench-peers`: our implementations timed beside the code a user would otherwise run, as ratios
(``benchmarks/peers.md``). The official repositories are read from local checkouts (never vendored):

    python -m benchmarks.peers --dcutmix <DCutMix> --sctl <SCTL> --styleflow <StyleFlow> --tvqvae <TVQ-VAE>
                               [--anomalib_venv <folder>] [--patchcore <patchcore-inspection>
                               --patchcore_venv <folder>] [--runs 5]

Rows: K-image mixing (our batched ``k_image_mix`` vs the official per-sample loop), SCTL's calibrator fits with
the class-wise objective on CIFAR-100-sized logits (seconds and the fitted temperatures), StyleGRU's forward +
backward at the paper's sizes, a training step of the token VQ (the multi-hot quantizer), and PatchCore beside
anomalib's and the official one on one stand-in category (``benchmarks/patchcore_row.py``, each side in its own
process and venv, since anomalib and the official code pin other versions of our dependencies; the venvs named
are created when missing). Every row follows one protocol (``benchmarks/timing.py``): an untimed warm-up, then
``--runs`` (at least 5) rounds alternating the sides, the median with the min-max spread, and "faster" only when
the spreads do not overlap. A missing checkout skips its rows, saying so.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "scripts"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from official_parity import dcutmix, sctl, stylegru, tvqvae  # noqa: E402
from official_parity.loading import git_commit  # noqa: E402

from benchmarks.patchcore_row import patchcore_rows  # noqa: E402
from benchmarks.timing import MIN_RUNS, PROTOCOL, Timings, compare, time_sides  # noqa: E402
from lightning_modules.components.mixing import PASTE_BOXES_FROM_PIXELS, k_image_mix  # noqa: E402
from lightning_modules.post_processing.calibrators import calibrate  # noqa: E402


def mixing_rows(official: Path, runs: int) -> list[str]:
    rows = [
        "| K-image mixing (cutmix mode, alpha 1) | batch | K | size | official img/s | ours img/s | |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for size in (32, 224):
        for batch in (64, 256):
            for k in (2, 3, 5):
                timings = mixing_times(official, batch, k, size, runs)
                rows.append(
                    f"| | {batch} | {k} | {size} | {timings['official'].rate_cell(batch)} | "
                    f"{timings['ours'].rate_cell(batch)} | {compare(timings['ours'], timings['official'])} |"
                )
    side = int(PASTE_BOXES_FROM_PIXELS**0.5)
    return rows + [
        "",
        "The official loop draws each sample's proportions and boxes in NumPy and copies the pasted boxes into a "
        "clone of the batch, slice by slice. Ours draws the whole batch's proportions and boxes at once, then "
        f"composes the images by copying the boxes on a CPU from {side} x {side} px up (only the boxes' pixels are "
        "touched) and below that, and on a GPU, by one gather from a per-pixel source index (no Python loop over "
        "samples); both give the same pixels for the same draw (tests/callbacks/test_mixing.py).",
    ]


def mixing_times(official: Path, batch: int, k: int, size: int, runs: int) -> dict[str, Timings]:
    """Seconds to mix one batch: the official sampler and per-sample loop, then ours, on the same images."""
    images, labels = torch.rand(batch, 3, size, size), torch.randint(0, 100, (batch,))
    mixer = dcutmix.official_mixer(official, k, 100)

    def theirs() -> None:
        phis = mixer["get_dirichlet_prior"](batch, k, alpha_label=1.0)
        mixer["joint_dirichlet"](images, labels, phis.numpy(), 1.0, mode="dcutmix")

    def ours() -> None:
        k_image_mix(images, labels, 100, k, 1.0, "cutmix", torch.Generator().manual_seed(0))

    return time_sides({"official": theirs, "ours": ours}, runs)


def sctl_rows(official: Path, runs: int) -> list[str]:
    """Each calibrator's fit on the same logits; the official files are read once, before any timed run."""
    logits, labels = sctl.synthetic_logits(100, 10000, 0, imbalance=10.0)
    modules = sctl.official_modules(official)
    rows = [
        "| SCTL fit, class-wise objective, 10,000 x 100 logits | official s | ours s | official T | ours T | |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for calibrator in ("ts", "cts", "pts"):
        objective = "nll" if calibrator == "pts" else "cl"  # the official PTS trains with its NLL loop
        fitted: dict[str, torch.nn.Module] = {}

        def theirs(calibrator=calibrator, objective=objective, fitted=fitted) -> None:
            fitted["official"] = sctl.official_fit(official, calibrator, objective, logits, labels, modules)

        def ours(calibrator=calibrator, objective=objective, fitted=fitted) -> None:
            fitted["ours"] = calibrate(calibrator, objective, logits, labels)

        timings = time_sides({"official": theirs, "ours": ours}, runs)
        rows.append(
            f"| {calibrator} / {objective} | {timings['official'].cell()} | {timings['ours'].cell()} | "
            f"{sctl._params(fitted['official'], calibrator, logits)} | "
            f"{sctl._params(fitted['ours'], calibrator, logits)} | {compare(timings['ours'], timings['official'])} |"
        )
    return rows


def stylegru_rows(official: Path, runs: int, batch: int = 1) -> list[str]:
    """Forward + backward of one triplet batch at the paper's model sizes (hidden 4096, 31 steps of 18 x 512
    latents); one triplet per batch, so that the protocol's runs fit in minutes (a step of 4 triplets takes about
    80 s here)."""
    theirs, ours = stylegru.paired_models(official, dim=18 * 512, hidden=4096)
    triplet = {k: torch.randn(batch, 31, 18 * 512) for k in ("anchor", "positive", "negative")}
    triplet["label"] = torch.randint(0, 2, (batch,))
    ours.log_dict = lambda *a, **k: None  # outside a trainer

    def run_theirs() -> None:
        theirs.zero_grad()
        stylegru.official_loss(theirs, triplet)[0].backward()

    def run_ours() -> None:
        ours.zero_grad()
        ours.training_step(triplet, 0).backward()

    timings = time_sides({"official": run_theirs, "ours": run_ours}, runs)
    return [
        f"| StyleGRU forward + backward, batch {batch} triplet(s), hidden 4096, 31 x 9,216 | official s | ours s | |",
        "|---|---:|---:|---|",
        f"| | {timings['official'].cell()} | {timings['ours'].cell()} | {compare(timings['ours'], timings['official'])} |",
    ]


def tvqvae_rows(official: Path, runs: int) -> list[str]:
    """One training step of the token VQ's quantizer (300 codes x 768, top-5 multi-hot) on 4,096 token vectors."""
    from lightning_modules.components.vector_quantization import MultiHotQuantizer

    theirs = tvqvae.official(official, "model").VectorQuantizer(num_embeddings=300, embedding_dim=768)
    ours = MultiHotQuantizer(300, 768, top_n=5, codebook_init="uniform", dead_code_restart=False).train()
    z = torch.nn.functional.normalize(torch.randn(4096, 768), dim=1)

    def run_theirs() -> None:
        theirs.zero_grad()
        loss, quantized, _, _ = theirs(z.clone().requires_grad_(True)[:, :, None, None], n=5)
        (loss + quantized.mean()).backward()

    def run_ours() -> None:
        ours.zero_grad()
        quantized, loss, _, _ = ours(z.clone().requires_grad_(True))
        (loss + quantized.mean()).backward()

    timings = time_sides({"official": run_theirs, "ours": run_ours}, runs)
    return [
        "| token VQ step (quantizer forward + backward), 4,096 x 768, 300 codes, top-5 | official ms | ours ms | |",
        "|---|---:|---:|---|",
        f"| | {timings['official'].cell(1000, 1)} | {timings['ours'].cell(1000, 1)} | "
        f"{compare(timings['ours'], timings['official'])} |",
    ]


def tvqvae_topic_rows(
    official: Path, runs: int, batch: int = 256, words: int = 2000, topics: int = 50
) -> list[str]:
    """One training step of the topic stage that reconstructs the word bag (the official ``initialize_vq`` loop,
    our first stage): the topic model and the alpha module on the same code bags, loss, backward and AdamW step.
    The official step's frozen BERT is built tiny and never called here: its loop reads the bags it computed
    once, as ours reads bags made once from cached token vectors."""
    from transformers import BertConfig

    from lightning_modules.tvqvae.networks import ConceptToWords, ProdLDA, bag_nll

    codes, code_dim = 300, 100  # the official 300 codes of hidden_dims[-1] = 100
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=1, intermediate_size=16
    )
    model_class = tvqvae.official(official, "model").TopicVectorQuantizedVAE
    # its __init__ calls init_weights() before it has submodules, which today's transformers rejects; at that point
    # there is nothing to initialize, so it is skipped (the submodules keep their PyTorch initialization)
    model_class.init_weights = lambda self: None
    theirs = model_class(config, 768, [500, 500, 1000, code_dim], codes, words, topics, 5)
    theirs.disable_ae_grads()
    theirs.train()
    theirs.ae.eval()
    their_optimizer = torch.optim.AdamW([p for p in theirs.parameters() if p.requires_grad], lr=1e-3)
    codebook = theirs.ae.vq_vae._embedding.weight.detach().clone()
    topic_model, alpha = ProdLDA(codes, topics, (100, 100)), ConceptToWords(code_dim, words, (100, 100))
    our_optimizer = torch.optim.AdamW(
        [*topic_model.parameters(), *alpha.parameters()], lr=1e-3, weight_decay=0.01
    )
    code_bags = torch.poisson(torch.full((batch, codes), 0.5))
    word_bags = torch.poisson(torch.full((batch, words), 0.05))

    def run_theirs() -> None:
        their_optimizer.zero_grad()
        out = theirs.forward_topic(code_bags, expansion=True)
        kl, _, reconstruction = theirs._loss_bow(code_bags, word_bags, out[5], out[6], *out[:5])
        (reconstruction + kl).backward()
        their_optimizer.step()

    def run_ours() -> None:
        our_optimizer.zero_grad()
        out = topic_model(code_bags)
        distribution, _ = alpha(out["theta"], topic_model.beta, codebook)
        (bag_nll(word_bags, distribution).mean() + out["kl"].mean()).backward()
        our_optimizer.step()

    timings = time_sides({"official": run_theirs, "ours": run_ours}, runs)
    return [
        f"| topic stage step (word-bag reconstruction), batch {batch}, {codes} codes, {words:,} words, K = {topics} "
        "| official ms | ours ms | |",
        "|---|---:|---:|---|",
        f"| | {timings['official'].cell(1000, 1)} | {timings['ours'].cell(1000, 1)} | "
        f"{compare(timings['ours'], timings['official'])} |",
    ]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for name in ("dcutmix", "sctl", "styleflow", "tvqvae"):
        parser.add_argument(f"--{name}", type=Path, help=f"a local checkout of the official {name} code")
    parser.add_argument(
        "--anomalib_venv", type=Path, help="anomalib's own venv (created with anomalib 2.7.0 when missing)"
    )
    parser.add_argument(
        "--patchcore",
        type=Path,
        help="a checkout of amazon-science/patchcore-inspection (the official PatchCore)",
    )
    parser.add_argument(
        "--patchcore_venv",
        type=Path,
        help="the official PatchCore's own venv (created with faiss-cpu when missing)",
    )
    parser.add_argument(
        "--runs", type=int, default=MIN_RUNS, help=f"timed runs per side (at least {MIN_RUNS})"
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "peers.md")
    args = parser.parse_args(argv)
    if args.runs < MIN_RUNS:
        parser.error(f"--runs {args.runs}: a published row rests on at least {MIN_RUNS} timed runs per side")
    official_patchcore = args.patchcore if args.patchcore is not None and args.patchcore.is_dir() else None
    sections = [
        ("DCutMix (clovaai/DCutMix)", "dcutmix", lambda p: mixing_rows(p, args.runs)),
        ("SCTL (SeungjinJung/SCTL)", "sctl", lambda p: sctl_rows(p, args.runs)),
        ("Style Latent Flows (jongwook-Choi/StyleFlow)", "styleflow", lambda p: stylegru_rows(p, args.runs)),
        ("TVQ-VAE (yjyoo3312/TVQ-VAE)", "tvqvae", lambda p: tvqvae_rows(p, args.runs)),
        ("TVQ-VAE topic stage (yjyoo3312/TVQ-VAE)", "tvqvae", lambda p: tvqvae_topic_rows(p, args.runs)),
        (
            "PatchCore beside anomalib and the official code (amazon-science/patchcore-inspection)",
            "anomalib_venv",
            lambda p: patchcore_rows(p, official_patchcore, args.patchcore_venv, runs=args.runs),
        ),
    ]
    lines = [
        "# Beside the official code",
        "",
        f"`make bench-peers` (`python -m benchmarks.peers ...`) on {platform.machine()}, {torch.get_num_threads()} "
        f"threads, torch {torch.__version__}, CPU, {datetime.date.today()}; {PROTOCOL.format(runs=args.runs)}.",
        "",
    ]
    for title, option, rows in sections:
        given = getattr(args, option)
        venv = option == "anomalib_venv"  # a folder this script fills, not a checkout that must exist
        lines += [f"## {title}", ""]
        if given is None or (not venv and not given.is_dir()):
            lines += [f"not run: no {'venv' if venv else 'checkout'} given (`--{option} <folder>`)", ""]
            continue
        if venv and official_patchcore is None:
            lines += ["the official PatchCore not run: no checkout given (`--patchcore <folder>`)", ""]
        print(f"{title} ...", flush=True)
        head = [] if venv else [f"official commit {git_commit(given)}", ""]
        lines += [*head, *rows(given), ""]
    markdown = "\n".join(lines)
    args.out.write_text(markdown)
    print(markdown)
    return markdown


if __name__ == "__main__":
    main()
