"""TVQ-VAE's two LightningModules: the token VQ autoencoder's pre-training, and the topic model (TVQ-VAE, or
plain ProdLDA on the word bag with the codebook bypassed).

Schedule: ``configs/tvqvae_vq_pretrain.yaml`` trains :class:`TokenVQModule` on the
frozen encoder's token vectors; ``configs/tvqvae_20ng.yaml`` loads it (``vq_path``), computes every document's
conceptual bag once (multi-hot code counts of its valid tokens) and trains :class:`TopicModelModule`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from datamodules.batch import TopicCorpus
from lightning_modules.outputs.checkpoints import read_run_checkpoint
from lightning_modules.routines.base import EvaluationRoutine
from lightning_modules.routines.topic_model import TopicModelRoutine
from lightning_modules.tvqvae.networks import (
    ConceptToWords,
    ProdLDA,
    TokenVQAutoencoder,
    bag_nll,
    codebook_use,
)


def _embeddings(module: TopicModelRoutine):
    """The corpus's token vectors (a one-line error when the datamodule is no topic corpus)."""
    return module.data_as(TopicCorpus).token_embeddings()


def document_tokens(embeddings, indices: torch.Tensor) -> torch.Tensor:
    """The valid-token vectors (float32) of documents ``indices``, concatenated."""
    rows = [
        torch.from_numpy(
            embeddings.vectors[embeddings.offsets[i] : embeddings.offsets[i + 1]].astype("float32")
        )
        for i in indices.tolist()
    ]
    return torch.cat(rows) if rows else torch.zeros(0, embeddings.dim)


class TokenVQModule(EvaluationRoutine):
    """Pre-trains the token VQ autoencoder: MSE to the encoder's token vectors + VQ loss (AdamW 5e-4, official:
    batch 256 documents, their valid tokens together).

    Args:
        hidden_dims: Encoder widths ending in the code width (official 500, 500, 1000, 100).
        num_codes: Codebook size (300).
        top_n: Nearest codes per token (5).
        commitment: Commitment cost (0.25).
        dropout: Dropout on the normalized latent.
        soft_multi_hot: Inverse-distance weights instead of ones (official: off).
        codebook_init: ``data`` (ours: codes from the first batch's latents), ``normal`` (N(0, 0.02), what the
            released code runs) or ``uniform`` (U(-1, 1), what it writes); both official ones collapse onto 5
            codes on the stand-in (see :class:`MultiHotQuantizer`).
        dead_code_restart: Move codes unused for 20 steps to random latents (ours; the official has none).
        standardize: Center and scale token vectors by the training split's statistics before encoding (ours;
            without it all tokens collapse onto the same codes, see :class:`TokenVQAutoencoder`).
        lr, weight_decay: AdamW.
        input_dim: Width of the token vectors (null: the data's encoder decides, when the model is built); a
            checkpoint records it, so ``test --ckpt_path <file>`` rebuilds the same network.
    """

    def __init__(
        self,
        hidden_dims: tuple[int, ...] = (500, 500, 1000, 100),
        num_codes: int = 300,
        top_n: int = 5,
        commitment: float = 0.25,
        dropout: float = 0.0,
        soft_multi_hot: bool = False,
        codebook_init: str = "data",
        dead_code_restart: bool = True,
        standardize: bool = True,
        lr: float = 5e-4,
        weight_decay: float = 0.01,
        input_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.autoencoder: TokenVQAutoencoder | None = None
        if input_dim is not None:
            self._build(input_dim)

    def configure_model(self) -> None:
        if self.autoencoder is None or self.trainer.state.fn == "fit":
            embeddings = _embeddings(self)
            if self.autoencoder is None:  # the width of the token vectors is known once the data is
                self._build(embeddings.dim)
            # from the training split (a resumed fit then loads the same values from its checkpoint)
            train = self.data_as(TopicCorpus).split_indices["train"]
            self.autoencoder.set_input_statistics(document_tokens(embeddings, torch.tensor(train)))

    def _build(self, input_dim: int) -> None:
        h = self.hparams
        self.hparams["input_dim"] = input_dim
        self.autoencoder = TokenVQAutoencoder(
            input_dim,
            h.hidden_dims,
            h.num_codes,
            h.top_n,
            h.commitment,
            h.dropout,
            h.soft_multi_hot,
            h.codebook_init,
            h.dead_code_restart,
            h.standardize,
        )

    def _forward(self, batch: dict[str, Any]) -> tuple[dict[str, torch.Tensor], torch.Tensor, int] | None:
        """(the autoencoder's outputs, the reconstruction MSE, tokens) of the batch's documents; None without
        a valid token."""
        tokens = document_tokens(_embeddings(self), batch["index"]).to(self.device)
        if not len(tokens):
            return None
        out = self.autoencoder(tokens)
        return out, F.mse_loss(out["reconstruction"].float(), out["target"]), len(tokens)

    def _step(self, batch: dict[str, Any], stage: str) -> torch.Tensor | None:
        result = self._forward(batch)
        if result is None:
            return None
        out, mse, count = result
        loss = mse + out["vq_loss"]
        self.log_dict(
            {
                f"{stage}/loss": loss,
                f"{stage}/mse": mse,
                f"{stage}/vq_loss": out["vq_loss"],
                f"{stage}/perplexity": out["perplexity"],
            },
            prog_bar=True,
            batch_size=count,
        )
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "val")

    def on_test_epoch_start(self) -> None:
        self._test_totals = torch.zeros(3, device=self.device)  # squared error, VQ loss x tokens, tokens
        self._test_usage = torch.zeros(self.autoencoder.quantizer.num_codes, device=self.device)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        result = self._forward(batch)
        if result is not None:
            out, mse, count = result
            self._test_totals += torch.stack(
                [mse * count, out["vq_loss"] * count, torch.tensor(float(count), device=self.device)]
            )
            self._test_usage += out["encodings"].sum(0)

    def on_test_epoch_end(self) -> None:
        """``test/mse``, ``test/vq_loss``, ``test/perplexity`` (codebook usage over all test tokens) and
        ``test/codes_used``, written as results.csv / results.md."""
        totals = self.trainer.strategy.reduce(self._test_totals, reduce_op="sum")
        usage = self.trainer.strategy.reduce(self._test_usage, reduce_op="sum")
        if totals[2] == 0:
            return
        row = {
            "mse": float(totals[0] / totals[2]),
            "vq_loss": float(totals[1] / totals[2]),
            **codebook_use(usage),
        }
        self.log_dict({f"test/{k}": v for k, v in row.items()})
        if self.trainer.is_global_zero:
            title = "Token VQ autoencoder (standardized-vector MSE, codebook use)"
            self.write_table([{"group": f"{int(totals[2])} test tokens", **row}], list(row), title, digits=4)

    def configure_optimizers(self):
        return torch.optim.AdamW(
            self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.autoencoder is None:
            self._build(int(checkpoint["hyper_parameters"]["input_dim"]))


def load_token_autoencoder(path: str | Path) -> TokenVQAutoencoder:
    """The autoencoder of a :class:`TokenVQModule` checkpoint, or of the newest ``last.ckpt`` of a run folder."""
    h, state = read_run_checkpoint(
        path, "vq_path", "autoencoder.", "tvqvae_vq_pretrain.yaml", "TokenVQModule", "input_dim"
    )
    model = TokenVQAutoencoder(
        int(h["input_dim"]),
        h["hidden_dims"],
        h["num_codes"],
        h["top_n"],
        h["commitment"],
        0.0,
        h.get("soft_multi_hot", False),
        h.get("codebook_init", "data"),
        standardize=h.get("standardize", True),
    )
    model.load_state_dict(state)
    return model.eval()


@torch.no_grad()
def encoded_word_bags(embeddings, indices: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """(B, V) word counts of the valid tokens the encoder read in documents ``indices`` (the official target)."""
    offsets, word_ids = embeddings.offsets, embeddings.word_ids
    rows = [
        np.bincount(word_ids[offsets[i] : offsets[i + 1]], minlength=vocab_size) for i in indices.tolist()
    ]
    return torch.from_numpy(np.stack(rows).astype(np.float32))


def conceptual_bags(autoencoder: TokenVQAutoencoder, embeddings, chunk: int = 65536) -> torch.Tensor:
    """(N, num_codes): each document's multi-hot code counts summed over its valid tokens (``doc_enc``)."""
    codes = torch.zeros(len(embeddings), autoencoder.quantizer.num_codes)
    owner = torch.repeat_interleave(
        torch.arange(len(embeddings)), torch.from_numpy(np.diff(embeddings.offsets))
    )
    for start in range(0, len(owner), chunk):
        tokens = torch.from_numpy(embeddings.vectors[start : start + chunk].astype("float32"))
        codes.index_add_(0, owner[start : start + chunk], autoencoder.codes(tokens))
    return codes


class TopicModelModule(TopicModelRoutine):
    """TVQ-VAE (topics over conceptual words, mapped back to real words) or ProdLDA (topics over words).

    ``tvqvae``: the inference network reads a document's conceptual bag; β (K, codes); the "alpha" module maps
    β through the codebook to β_o (K, V), the evaluated topic-word matrix. The first
    ``word_reconstruction_epochs`` epochs reconstruct the word bag from softmax(BN(θβ_o)) (the official
    ``initialize_vq`` stage, the only one its scripts run); later ones the conceptual bag from softmax(BN(θβ))
    (``train``). The VQ autoencoder stays frozen and the bags are computed once. ``prodlda``: the same topic
    model on the word bag, the codebook bypassed.

    Args:
        num_topics: K.
        vocab_size: Words (linked from the datamodule).
        mode: ``tvqvae`` or ``prodlda``.
        vq_path: A TokenVQModule checkpoint or its run folder (``tvqvae``).
        hidden: Inference-network widths (100, 100).
        alpha_hidden: Hidden layers of the alpha module (paper 1 = (100, 100), 2 = (100, 100, 100)).
        dropout: Inference-network dropout (0 as released for text).
        word_reconstruction_epochs: Epochs of the first stage (null: all).
        word_bag: The word bag the first stage rebuilds (``tvqvae``): ``encoded_tokens``, the valid tokens the
            encoder read (within its first ``max_tokens`` word pieces), as the official code counts it, or the
            whole ``document``'s bag (ours before; differs on documents longer than the encoder reads).
        lr, weight_decay: AdamW (official lr 1e-3, batch 256).
    """

    def __init__(
        self,
        num_topics: int = 50,
        vocab_size: int = 0,
        mode: Literal["tvqvae", "prodlda"] = "tvqvae",
        vq_path: str | None = None,
        hidden: tuple[int, ...] = (100, 100),
        alpha_hidden: int = 1,
        dropout: float = 0.0,
        word_reconstruction_epochs: int | None = None,
        word_bag: Literal["encoded_tokens", "document"] = "encoded_tokens",
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        npmi_top: int = 10,
        diversity_top: int = 25,
        cluster_seed: int = 0,
        npmi_texts: Literal["lemmatized", "vocabulary"] = "lemmatized",
        clusters: Literal["topics", "classes"] = "topics",
    ) -> None:
        super().__init__(npmi_top, diversity_top, cluster_seed, npmi_texts, clusters)
        if mode not in ("tvqvae", "prodlda"):
            raise ValueError(f"model.init_args.mode must be tvqvae or prodlda, got {mode!r}")
        if vocab_size < 1:
            raise ValueError("model.init_args.vocab_size must be >= 1 (it is linked from data.vocab_size)")
        if word_bag not in ("encoded_tokens", "document"):
            raise ValueError(f"model.init_args.word_bag must be encoded_tokens or document, got {word_bag!r}")
        if mode == "tvqvae" and not vq_path:
            raise ValueError("model.init_args.vq_path is needed for mode tvqvae (a tvqvae_vq_pretrain run)")
        self.save_hyperparameters()
        self.mode = mode
        if mode == "prodlda":
            self.topic_model = ProdLDA(vocab_size, num_topics, hidden, dropout)
        else:
            self.autoencoder = load_token_autoencoder(vq_path).requires_grad_(False)
            codebook = self.autoencoder.quantizer.codebook
            self.topic_model = ProdLDA(codebook.shape[0], num_topics, hidden, dropout)
            self.alpha = ConceptToWords(codebook.shape[1], vocab_size, (100,) * (alpha_hidden + 1), dropout)
        self.register_buffer("concept_bags", torch.zeros(0), persistent=False)

    @property
    def method_name(self) -> str:
        return "TVQ-VAE" if self.mode == "tvqvae" else "ProdLDA"

    def setup(self, stage: str) -> None:
        if self.mode == "tvqvae" and not len(self.concept_bags):
            self.concept_bags = conceptual_bags(self.autoencoder, _embeddings(self)).to(self.device)

    def _input(self, batch: dict[str, Any]) -> torch.Tensor:
        return batch["bow"] if self.mode == "prodlda" else self.concept_bags[batch["index"]]

    def _word_bag(self, batch: dict[str, Any]) -> torch.Tensor:
        """What the first stage rebuilds: the encoded tokens' word counts, or the document's bag of words."""
        if self.hparams.word_bag == "document":
            return batch["bow"]
        return encoded_word_bags(_embeddings(self), batch["index"], batch["bow"].shape[1]).to(batch["bow"])

    def _reconstructs_words(self) -> bool:
        epochs = self.hparams.word_reconstruction_epochs
        return self.mode == "prodlda" or epochs is None or self.current_epoch < epochs

    def _loss(self, batch: dict[str, Any], stage: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(loss, the topic model's outputs), the loss terms logged."""
        bag = self._input(batch).float()
        out = self.topic_model(bag)
        if self.mode == "prodlda":
            reconstruction = bag_nll(batch["bow"], out["distribution"])
        elif self._reconstructs_words():
            distribution, _ = self.alpha(
                out["theta"], self.topic_model.beta, self.autoencoder.quantizer.codebook
            )
            reconstruction = bag_nll(self._word_bag(batch), distribution)
        else:
            reconstruction = bag_nll(bag, out["distribution"])
        reconstruction, kl = reconstruction.mean(), out["kl"].mean()
        loss = reconstruction + kl
        self.log_dict(
            {f"{stage}/loss": loss, f"{stage}/reconstruction": reconstruction, f"{stage}/kl": kl},
            prog_bar=stage != "train",
            batch_size=len(bag),
        )
        return loss, out

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._loss(batch, "train")[0]

    def _evaluate_step(self, batch: dict[str, Any], stage: str) -> None:
        _, out = self._loss(batch, stage)
        self._collect(batch, F.softmax(out["mean"].float(), dim=1))  # the posterior mean, as document_topics

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate_step(batch, "test")

    def topic_word_matrix(self) -> torch.Tensor:
        if self.mode == "prodlda":
            return self.topic_model.beta
        with torch.no_grad():
            return self.alpha.topic_words(self.topic_model.beta, self.autoencoder.quantizer.codebook)

    def document_topics(self, batch: dict[str, Any]) -> torch.Tensor:
        with torch.no_grad():
            mean, _ = self.topic_model.inference(self._input(batch).float())
        return F.softmax(mean, dim=1)  # the posterior mean, not a sample (the official code samples)

    def configure_optimizers(self):
        parameters = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.AdamW(parameters, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
