"""Latent Dirichlet Allocation (gensim's ``LdaModel``, online variational Bayes) as a LightningModule, so the
LDA baseline runs from the same YAML, data, splits and metrics as the neural topic models.

Each training epoch is one gensim pass over the training documents (the epoch's batches are gathered and handed
to ``LdaModel.update`` at its end, in gensim's own chunks), so ``trainer.max_epochs`` is LDA's ``passes``.
There is no optimizer. The learnt topic-word Dirichlet (λ) and document prior (α) are kept as buffers, so the
model lives in the checkpoint and a resumed run continues from it.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from lightning_modules.routines.topic_model import TopicModelRoutine


def _gensim_bows(dense: torch.Tensor) -> list[list[tuple[int, int]]]:
    rows = []
    for row in dense.cpu():
        ids = torch.nonzero(row).flatten()
        rows.append(list(zip(ids.tolist(), row[ids].round().long().tolist(), strict=True)))
    return rows


class LDAModule(TopicModelRoutine):
    """LDA with K topics over the datamodule's vocabulary.

    Args:
        num_topics: K.
        vocab_size: Words (linked from the datamodule).
        alpha: Document-topic prior: ``symmetric`` (1/K), ``asymmetric`` or ``auto`` (learnt), gensim's meaning.
        eta: Topic-word prior (null: 1/K).
        chunksize: Documents per online update.
        iterations, gamma_threshold: Per-document E-step limits.
        decay, offset: Online learning-rate schedule (κ, τ0 of Hoffman et al.).
        seed: gensim's random state.
    """

    def __init__(
        self,
        num_topics: int = 50,
        vocab_size: int = 0,
        alpha: Literal["symmetric", "asymmetric", "auto"] = "symmetric",
        eta: float | None = None,
        chunksize: int = 2000,
        iterations: int = 50,
        gamma_threshold: float = 0.001,
        decay: float = 0.5,
        offset: float = 1.0,
        seed: int = 0,
        npmi_top: int = 10,
        diversity_top: int = 25,
        cluster_seed: int = 0,
        npmi_texts: Literal["lemmatized", "vocabulary"] = "lemmatized",
        clusters: Literal["topics", "classes"] = "topics",
    ) -> None:
        super().__init__(npmi_top, diversity_top, cluster_seed, npmi_texts, clusters)
        if vocab_size < 1:
            raise ValueError("model.init_args.vocab_size must be >= 1 (it is linked from data.vocab_size)")
        self.save_hyperparameters()
        self.register_buffer("topic_word_lambda", torch.zeros(0, dtype=torch.float64))
        self.register_buffer("document_alpha", torch.zeros(0, dtype=torch.float64))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        self._lda = None
        self._epoch_documents: list[list[tuple[int, int]]] = []

    @property
    def lda(self):
        """The gensim model, rebuilt from the buffers when they hold a trained one (e.g. after loading)."""
        if self._lda is None:
            from gensim.models import LdaModel

            h = self.hparams
            id2word = {i: str(i) for i in range(h.vocab_size)}
            self._lda = LdaModel(
                num_topics=h.num_topics,
                id2word=id2word,
                alpha=h.alpha,
                eta=h.eta,
                chunksize=h.chunksize,
                iterations=h.iterations,
                gamma_threshold=h.gamma_threshold,
                decay=h.decay,
                offset=h.offset,
                random_state=h.seed,
                eval_every=None,
            )
            if len(self.topic_word_lambda):
                dtype = self._lda.dtype
                self._lda.state.sstats = (self.topic_word_lambda.cpu().numpy() - self._lda.eta).astype(dtype)
                self._lda.alpha = self.document_alpha.cpu().numpy().astype(dtype)
                self._lda.num_updates = int(self.updates)
                self._lda.sync_state()
        return self._lda

    def _store(self) -> None:
        self.topic_word_lambda = torch.from_numpy(self.lda.state.get_lambda().copy()).to(self.device)
        self.document_alpha = torch.from_numpy(np.asarray(self.lda.alpha, dtype=np.float64).copy()).to(
            self.device
        )
        self.updates = torch.tensor(int(self.lda.num_updates), device=self.device)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint["state_dict"]
        self.topic_word_lambda = state[
            "topic_word_lambda"
        ].clone()  # buffers of the saved size before loading
        self.document_alpha = state["document_alpha"].clone()
        self._lda = None

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._epoch_documents += _gensim_bows(batch["bow"])

    def on_train_epoch_end(self) -> None:
        documents = self.all_gather_documents()
        if documents:
            self.lda.update(documents, passes=1)
            self._store()
            self.log("train/log_perplexity", float(self.lda.log_perplexity(documents[:2000])))
        self._epoch_documents = []

    def all_gather_documents(self) -> list[list[tuple[int, int]]]:
        """This epoch's training documents from every rank (LDA's update is one process's work)."""
        if self.trainer.world_size == 1:
            return self._epoch_documents
        gathered: list[Any] = [None] * self.trainer.world_size
        torch.distributed.all_gather_object(gathered, self._epoch_documents)
        return [doc for part in gathered for doc in part]

    def _eval_step(self, batch: dict[str, Any], stage: str) -> None:
        if len(self.topic_word_lambda):
            bound = self.lda.log_perplexity(_gensim_bows(batch["bow"]))
            self.log(f"{stage}/log_perplexity", float(bound), batch_size=len(batch["bow"]))
            self._collect(batch)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def topic_word_matrix(self) -> torch.Tensor:
        return torch.from_numpy(self.lda.get_topics())

    def document_topics(self, batch: dict[str, Any]) -> torch.Tensor:
        # gensim starts each document's variational posterior at random: seed it, so the same model gives the
        # same proportions whenever it is asked (a reloaded checkpoint included)
        self.lda.random_state = np.random.RandomState(self.hparams.seed)
        gamma, _ = self.lda.inference(_gensim_bows(batch["bow"]))
        return torch.from_numpy(gamma / gamma.sum(1, keepdims=True)).float()

    def configure_optimizers(self) -> None:
        return None
