"""What every topic model here shares: topic metrics at validation and test, topic word lists, predictions.

A model subclasses :class:`TopicModelRoutine` and implements ``topic_word_matrix() -> (K, V)`` (the weights its
topics' top words are read from) and ``document_topics(batch) -> (B, K)`` (topic proportions, no sampling). The
routine then logs ``<stage>/npmi``, ``td``, ``tq`` and their best-half ``*_50`` variants (internal NPMI over the
datamodule's documents; the paper's tables report the best-half ones), ``nmi`` / ``purity`` of KMeans on the evaluated documents' proportions when the
corpus has labels, writes ``topics.txt`` (each topic's NPMI and top words) and ``results.csv/md`` at test, and
logs the word lists to TensorBoard as text. ``predict`` writes each document's main topic.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torchmetrics.aggregation import CatMetric

from datamodules.batch import TopicCorpus
from lightning_modules.metrics.topics import clustering_scores, topic_scores
from lightning_modules.outputs.run_outputs import log_text
from lightning_modules.outputs.tables import components_line
from lightning_modules.routines.base import EvaluationRoutine

TOPIC_METRICS = ("npmi", "td", "tq", "npmi_50", "td_50", "tq_50")


class TopicModelRoutine(EvaluationRoutine):
    """Evaluation shared by TVQ-VAE, ProdLDA and LDA (see the module docstring).

    Args:
        npmi_top: Top words per topic for NPMI (10).
        diversity_top: Top words per topic for topic diversity (25).
        cluster_seed: Seed of the KMeans clustering of document topics.
        npmi_texts: NPMI over the documents' ``lemmatized`` words, every word kept (the official code: words
            outside the vocabulary still take their place in gensim's 10-word windows), or over their
            ``vocabulary`` words only (which shortens the windows' real span and reads NPMI 0.02-0.05 higher).
        clusters: KMeans with one cluster per topic (``topics``, the official code) or per class (``classes``).
    """

    def __init__(
        self,
        npmi_top: int = 10,
        diversity_top: int = 25,
        cluster_seed: int = 0,
        npmi_texts: Literal["lemmatized", "vocabulary"] = "lemmatized",
        clusters: Literal["topics", "classes"] = "topics",
    ) -> None:
        super().__init__()
        if npmi_texts not in ("lemmatized", "vocabulary") or clusters not in ("topics", "classes"):
            raise ValueError(
                "model.init_args.npmi_texts must be lemmatized or vocabulary and clusters topics or classes, "
                f"got {npmi_texts!r}, {clusters!r}"
            )
        self.npmi_top = npmi_top
        self.diversity_top = diversity_top
        self.cluster_seed = cluster_seed
        self.npmi_texts = npmi_texts
        self.clusters = clusters
        self.eval_theta = CatMetric()
        self.eval_labels = CatMetric()

    def topic_word_matrix(self) -> torch.Tensor:
        raise NotImplementedError

    def document_topics(self, batch: dict[str, Any]) -> torch.Tensor:
        raise NotImplementedError

    # ----------------------------------------------------------------------------------------- evaluation
    def _collect(self, batch: dict[str, Any], theta: torch.Tensor | None = None) -> None:
        """Keep the batch's topic proportions (``theta`` when the step already has them) and labels."""
        theta = self.document_topics(batch) if theta is None else theta
        self.eval_theta.update(theta.detach().float())
        self.eval_labels.update(batch["label"].float())

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The vocabulary travels with the checkpoint (``trained_on``): ``test`` and ``predict`` count documents in
        the words the model was trained on, and a predict on your documents needs no corpus."""
        super().on_save_checkpoint(checkpoint)
        checkpoint["trained_on"]["vocabulary"] = list(self._corpus().id2word())

    def _corpus(self) -> Any:
        """The datamodule as a topic corpus (dictionary, texts, labels); a one-line error naming what it lacks."""
        return self.data_as(TopicCorpus)

    def _evaluate(self, stage: str) -> dict[str, Any] | None:
        if not self.eval_theta.update_count:
            return None
        theta, labels = self.eval_theta.compute().cpu().numpy(), self.eval_labels.compute().cpu().numpy()
        self.eval_theta.reset()
        self.eval_labels.reset()
        corpus = self._corpus()
        scores = topic_scores(
            self.topic_word_matrix().detach().cpu(),
            corpus.id2word(),
            corpus.lemmatized_texts if self.npmi_texts == "lemmatized" else corpus.texts,
            corpus.dictionary,
            self.npmi_top,
            self.diversity_top,
        )
        labeled = labels >= 0
        if labeled.sum() > 1 and len(np.unique(labels[labeled])) > 1:
            clusters = len(corpus.label_names) if self.clusters == "classes" else theta.shape[1]
            labeled_theta, known = theta[labeled], labels[labeled].astype(int)
            scores.update(clustering_scores(labeled_theta, known, clusters=clusters, seed=self.cluster_seed))
        metrics = {k: float(v) for k, v in scores.items() if k in (*TOPIC_METRICS, "nmi", "purity")}
        self.log_dict(
            {f"{stage}/{k}": v for k, v in metrics.items()}, prog_bar=stage == "test", sync_dist=False
        )
        self._log_topics(stage, scores)
        return scores

    def on_validation_epoch_end(self) -> None:
        self._evaluate("val")

    def on_test_epoch_end(self) -> None:
        scores = self._evaluate("test")
        if scores is None or not self.trainer.is_global_zero:
            return
        out = self.run_dir()
        out.mkdir(parents=True, exist_ok=True)
        (out / "topics.txt").write_text(  # every word TD reads: scripts/score_topics.py rescores the file
            f"# {components_line(self.components())}\n" + self._topic_lines(scores)
        )
        names = [m for m in (*TOPIC_METRICS, "nmi", "purity") if m in scores]
        row = {
            "group": f"{self.method_name} K={len(scores['topics'])}",
            **{m: float(scores[m]) for m in names},
        }
        self.write_table([row], names, self._table_title(), digits=4, note=" and topics.txt")

    @property
    def method_name(self) -> str:
        return type(self).__name__.removesuffix("Module")

    def _table_title(self) -> str:
        corpus = self._corpus()
        return (
            f"{self.method_name} on {corpus.data_dir}: internal NPMI (c_npmi, top-{self.npmi_top}, over the "
            f"{self.npmi_texts} texts), TD (top-{self.diversity_top}), TQ; *_50 = the best half of the topics, "
            "the columns the paper reports"
        )

    def _topic_lines(self, scores: dict[str, Any]) -> str:
        """A line per topic, best NPMI first: its NPMI and every word the scores read (the first ``npmi_top`` for
        NPMI, the first ``diversity_top`` for TD)."""
        order = sorted(range(len(scores["topics"])), key=lambda k: -scores["topic_npmi"][k])
        return "".join(
            f"topic {k:3d}  npmi {scores['topic_npmi'][k]:+.3f}  {' '.join(scores['topics'][k])}\n"
            for k in order
        )

    def _log_topics(self, stage: str, scores: dict[str, Any]) -> None:
        if self.trainer.is_global_zero:
            text = "    " + self._topic_lines(scores).replace("\n", "\n    ")  # markdown code block
            log_text(self.trainer, f"{stage}/topics", text)

    # ------------------------------------------------------------------------------------------ predict
    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """A row per document: where it came from (a ``predict_dir`` file), its main topic and that topic's
        probability, then every topic's proportion (``theta_<k>``)."""
        theta = self.document_topics(batch).float()
        probability, topic = theta.max(1)
        row = {"path": batch["path"]} if "path" in batch else {}
        row |= {
            "document": batch["index"],
            "label": batch["label"],
            "topic": topic,
            "topic_probability": probability,
        }
        return row | {f"theta_{k}": theta[:, k] for k in range(theta.shape[1])}
