"""Topic-model metrics as the TVQ-VAE code computes them (yjyoo3312/TVQ-VAE, document_analysis; see lightning_modules/tvqvae/README.md).

* NPMI: gensim's ``CoherenceModel`` ``c_npmi`` on each topic's top-10 words, over the corpus's own documents
  (all splits): *internal* NPMI, not comparable with NPMI on an external reference corpus.
* ``*_50``: the best half of the topics by NPMI (⌊K/2⌋), the paper's "NPMI 50%"; TD and TQ follow that half.
* TD (topic diversity): unique words among the topics' top-25 ÷ (25 × topics).
* TQ (topic quality): NPMI × TD.
* Clustering: KMeans (seeded) on the test documents' topic proportions, NMI and purity against their labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:  # gensim is imported where NPMI is computed: the image models' purity does not need it
    from gensim.corpora import Dictionary


def top_words(topic_word: torch.Tensor | np.ndarray, id2word: Sequence[str], n: int) -> list[list[str]]:
    """Each topic's ``n`` highest-weighted words."""
    weights = torch.as_tensor(topic_word).float()
    n = min(n, weights.shape[1])
    return [[id2word[i] for i in row] for row in weights.topk(n, dim=1).indices.tolist()]


def npmi_per_topic(
    topics: Sequence[Sequence[str]], texts: Sequence[Sequence[str]], dictionary: Dictionary, topn: int = 10
) -> list[float]:
    """gensim ``c_npmi`` of each topic's first ``topn`` words over ``texts`` (sliding windows of 10 words)."""
    from gensim.models.coherencemodel import CoherenceModel

    model = CoherenceModel(
        topics=[list(t[:topn]) for t in topics],
        texts=[list(t) for t in texts],
        dictionary=dictionary,
        coherence="c_npmi",
        topn=topn,
        processes=1,
    )
    return [float(v) for v in model.get_coherence_per_topic()]


def topic_diversity(topics: Sequence[Sequence[str]], topn: int = 25) -> float:
    """Unique words among the topics' first ``topn`` ÷ (``topn`` × topics)."""
    if not topics:
        return float("nan")
    return len({w for t in topics for w in t[:topn]}) / (topn * len(topics))


def topic_scores(
    topic_word: torch.Tensor | np.ndarray,
    id2word: Sequence[str],
    texts: Sequence[Sequence[str]],
    dictionary: Dictionary,
    npmi_top: int = 10,
    diversity_top: int = 25,
) -> dict[str, object]:
    """``npmi``, ``td``, ``tq`` over all topics and ``npmi_50``, ``td_50``, ``tq_50`` over the best half, with
    the per-topic NPMI and word lists (``topics``, ranked as given)."""
    topics = top_words(topic_word, id2word, max(npmi_top, diversity_top))
    return word_list_scores(topics, texts, dictionary, npmi_top, diversity_top)


def word_list_scores(
    topics: Sequence[Sequence[str]],
    texts: Sequence[Sequence[str]],
    dictionary: Dictionary,
    npmi_top: int = 10,
    diversity_top: int = 25,
) -> dict[str, object]:
    """:func:`topic_scores` of topics given as word lists (another library's, ``scripts/score_topics.py``)."""
    topics = [list(t) for t in topics]
    npmi = npmi_per_topic(topics, texts, dictionary, npmi_top)
    best = sorted(range(len(topics)), key=lambda k: -npmi[k])[: max(1, len(topics) // 2)]
    scores: dict[str, object] = {
        "npmi": float(np.mean(npmi)),
        "td": topic_diversity(topics, diversity_top),
        "npmi_50": float(np.mean([npmi[k] for k in best])),
        "td_50": topic_diversity([topics[k] for k in best], diversity_top),
    }
    scores["tq"] = scores["npmi"] * scores["td"]
    scores["tq_50"] = scores["npmi_50"] * scores["td_50"]
    scores["topics"], scores["topic_npmi"] = topics, npmi
    return scores


def purity(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Fraction of documents whose cluster's majority label is their own."""
    total = 0
    for cluster in np.unique(clusters):
        total += np.bincount(labels[clusters == cluster]).max()
    return float(total / len(labels))


def clustering_scores(
    theta: np.ndarray, labels: np.ndarray, clusters: int, seed: int = 0
) -> dict[str, float]:
    """KMeans with ``clusters`` centers on the topic proportions: NMI and purity against ``labels``."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    clusters = min(clusters, len(theta))
    assigned = KMeans(n_clusters=clusters, n_init=10, random_state=seed).fit_predict(theta)
    return {"nmi": float(normalized_mutual_info_score(labels, assigned)), "purity": purity(labels, assigned)}
