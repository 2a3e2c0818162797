"""TVQ-VAE beside yjyoo3312/TVQ-VAE: the multi-hot quantizer on the same codebook and vectors, and the topic
metrics: the official ``measurement`` (best-half NPMI and TD over the lemmatized texts) beside ours over the
lemmatized texts (our default) and over the vocabulary-reduced texts (our earlier default), for the same LDA
topic lists of gensim's lee_background corpus."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from datamodules.text_corpus import TextCorpusDataModule
from lightning_modules.components.vector_quantization import MultiHotQuantizer
from lightning_modules.metrics.topics import topic_scores

from .loading import load_module


def official(official_root: Path, name: str):
    folder = official_root / "document_analysis"
    return load_module(folder / f"{name}.py", f"tvqvae_official_{name}", package_root=folder)


def quantizer_rows(official_root: Path) -> list[str]:
    model = official(official_root, "model")
    torch.manual_seed(0)
    theirs = model.VectorQuantizer(num_embeddings=300, embedding_dim=100)
    ours = MultiHotQuantizer(300, 100, top_n=5, codebook_init="uniform", dead_code_restart=False).train()
    with torch.no_grad():
        ours.codebook.copy_(theirs._embedding.weight)
    z = torch.nn.functional.normalize(torch.randn(512, 100), dim=1).requires_grad_(True)
    loss_theirs, quantized_theirs, _, encodings_theirs = theirs(z[:, :, None, None], n=5)
    quantized_ours, loss_ours, encodings_ours, _ = ours(z)
    same_codes = bool(torch.equal(encodings_theirs, encodings_ours))
    return [
        "| quantizer (300 codes x 100, top-5 multi-hot, the official codebook copied) | max abs difference |",
        "|---|---:|",
        f"| multi-hot assignments of 512 vectors | {'identical' if same_codes else 'differ'} |",
        f"| quantized vectors | {float((quantized_theirs.flatten(1) - quantized_ours).abs().max()):.1e} |",
        f"| VQ loss (commitment 0.25) | {abs(float(loss_theirs - loss_ours)):.1e} |",
    ]


def metric_rows(official_root: Path, topics: int = 10, seeds: tuple[int, ...] = (0, 1)) -> list[str]:
    from gensim.models import LdaModel

    utils = official(official_root, "utils")
    rows = [
        f"| lee_background, LDA K={topics}, seed | official NPMI 50% / TD 50% | ours, lemmatized texts | "
        "ours, vocabulary texts |",
        "|---|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as root:
        data = TextCorpusDataModule(root=root, synthetic=True, standin="lee_background", standin_size="small")
        data.setup()
        bows = [data.dictionary.doc2bow(t) for t in data.texts]
        for seed in seeds:
            lda = LdaModel(bows, num_topics=topics, id2word=data.dictionary, passes=5, random_state=seed)
            topic_word = torch.from_numpy(lda.get_topics())
            words = [[data.dictionary[i] for i in row] for row in topic_word.topk(25, dim=1).indices.tolist()]
            measure = utils.TVQVAEClusUtils()
            measure.texts, measure.id2word, measure.corpus = data.lemmatized_texts, data.dictionary, bows
            npmi, diversity = measure.measurement([w[:10] for w in words], words)
            lemmatized = topic_scores(topic_word, data.id2word(), data.lemmatized_texts, data.dictionary)
            vocabulary = topic_scores(topic_word, data.id2word(), data.texts, data.dictionary)
            rows.append(
                f"| {seed} | {npmi:.4f} / {diversity:.4f} | {lemmatized['npmi_50']:.4f} / {lemmatized['td_50']:.4f} "
                f"| {vocabulary['npmi_50']:.4f} / {vocabulary['td_50']:.4f} |"
            )
    return rows


def compare(official_root: Path) -> list[str]:
    return quantizer_rows(official_root) + [""] + metric_rows(official_root)
