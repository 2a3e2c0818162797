"""TVQ-VAE's networks: the token autoencoder (on the multi-hot vector quantizer of ``components/``), and the ProdLDA topic model with the
module that maps code topics back to real words. No Lightning here.

Independent of text: the topic model sees a bag over any vocabulary (codes, words, image codes); only
:class:`TokenVQAutoencoder` knows it quantizes token vectors.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.components.vector_quantization import MultiHotQuantizer


def codebook_use(usage: torch.Tensor) -> dict[str, float]:
    """``perplexity`` (exp of the entropy of the code frequencies: the effective number of codes) and
    ``codes_used`` (codes chosen at least once) of per-code counts ``usage``."""
    share = usage.float() / usage.sum().clamp_min(1)
    return {
        "perplexity": float(torch.exp(-(share * torch.log(share + 1e-10)).sum())),
        "codes_used": float((usage > 0).sum()),
    }


def mlp(dims: Sequence[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(dims)):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class TokenVQAutoencoder(nn.Module):
    """MLP autoencoder over frozen token vectors with a multi-hot quantized, L2-normalized bottleneck.

    Encoder ``input_dim -> hidden_dims`` (ReLU between), L2 normalization, dropout, quantizer; the decoder mirrors
    the encoder back to ``input_dim`` (official: 768 -> 500 -> 500 -> 1000 -> 100, 300 codes, top-5).

    ``standardize`` (ours) first subtracts the corpus's mean token vector and divides by its per-dimension
    spread (:meth:`set_input_statistics`), and the decoder rebuilds that standardized vector. Contextual token
    vectors share one large common direction; without this every latent points the same way and all tokens pick
    the same ``top_n`` codes whatever the codebook's initialization (measured on the stand-in and in
    tests/methods/test_tvqvae.py).
    """

    def __init__(
        self,
        input_dim: int = 768,
        hidden_dims: Sequence[int] = (500, 500, 1000, 100),
        num_codes: int = 300,
        top_n: int = 5,
        commitment: float = 0.25,
        dropout: float = 0.0,
        soft_multi_hot: bool = False,
        codebook_init: str = "data",
        dead_code_restart: bool = True,
        standardize: bool = True,
    ) -> None:
        super().__init__()
        dims = [input_dim, *hidden_dims]
        self.standardize = standardize
        self.register_buffer("input_mean", torch.zeros(input_dim))
        self.register_buffer("input_std", torch.ones(input_dim))
        self.encoder = mlp(dims)
        self.dropout = nn.Dropout(dropout)
        self.quantizer = MultiHotQuantizer(
            num_codes, dims[-1], top_n, commitment, soft_multi_hot, codebook_init, dead_code_restart
        )
        self.decoder = mlp(dims[::-1])

    @torch.no_grad()
    def set_input_statistics(self, tokens: torch.Tensor) -> None:
        """Mean and per-dimension standard deviation of (training) token vectors, for ``standardize``."""
        self.input_mean.copy_(tokens.float().mean(0))
        self.input_std.copy_(tokens.float().std(0).clamp_min(1e-6))

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """What the encoder reads and the decoder rebuilds: ``x``, standardized when ``standardize``."""
        return (x.float() - self.input_mean) / self.input_std if self.standardize else x

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(F.normalize(self.encoder(self.prepare(x)), dim=-1))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.encode(x)
        z_q, vq_loss, encodings, perplexity = self.quantizer(z)
        return {
            "reconstruction": self.decoder(z_q),
            "target": self.prepare(x),
            "z": z,
            "encodings": encodings,
            "vq_loss": vq_loss,
            "perplexity": perplexity,
        }

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Multi-hot code assignments of token vectors ``x`` (N, input_dim)."""
        return self.quantizer.assign(self.encode(x))


class InferenceNetwork(nn.Module):
    """ProdLDA's encoder: Linear, tanh per hidden layer, dropout, then mean and log-variance heads, each through
    a BatchNorm without affine parameters (AVITM)."""

    def __init__(
        self,
        input_size: int,
        output_size: int,
        hidden: Sequence[int] = (100, 100),
        dropout: float = 0.0,
        front: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.front = front if front is not None else nn.Linear(input_size, hidden[0])
        layers: list[nn.Module] = [nn.Tanh()]
        for a, b in itertools.pairwise(hidden):
            layers += [nn.Linear(a, b), nn.Tanh()]
        self.hidden = nn.Sequential(*layers, nn.Dropout(dropout))
        self.mean = nn.Sequential(
            nn.Linear(hidden[-1], output_size), nn.BatchNorm1d(output_size, affine=False)
        )
        self.log_variance = nn.Sequential(
            nn.Linear(hidden[-1], output_size), nn.BatchNorm1d(output_size, affine=False)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(self.front(x))
        return self.mean(h), self.log_variance(h)


def gaussian_kl(
    posterior_mean: torch.Tensor,
    posterior_log_variance: torch.Tensor,
    prior_mean: torch.Tensor,
    prior_variance: torch.Tensor,
) -> torch.Tensor:
    """KL(N(mean, exp(log_variance)) || N(prior_mean, prior_variance)) per row, diagonal Gaussians."""
    variance = posterior_log_variance.exp()
    return 0.5 * (
        (variance / prior_variance).sum(1)
        + ((prior_mean - posterior_mean) ** 2 / prior_variance).sum(1)
        - posterior_mean.shape[1]
        + prior_variance.log().sum()
        - posterior_log_variance.sum(1)
    )


def inverse_softplus(x: float) -> float:
    return x + math.log(-math.expm1(-x))


class ProdLDA(nn.Module):
    """ProdLDA (Srivastava & Sutton 2017) over a bag of ``bag_size`` items (words, or codes for TVQ-VAE).

    θ = softmax(reparameterized sample of the inference network's Gaussian); the bag's distribution is
    ``softmax(BN(θ β))`` with β (K, bag_size). The logistic-normal prior's mean (1/K) and variance (1 - 1/K) are
    learnt, as in the official code; the variance through a softplus so it stays positive (ours).
    """

    def __init__(
        self,
        bag_size: int,
        num_topics: int,
        hidden: Sequence[int] = (100, 100),
        dropout: float = 0.0,
        prior_mean: float | None = None,
        input_size: int | None = None,
        front: nn.Module | None = None,
        theta_dropout: float | None = None,
    ) -> None:
        super().__init__()
        k = num_topics
        self.num_topics = k
        self.inference = InferenceNetwork(input_size or bag_size, k, hidden, dropout, front=front)
        self.prior_mean = nn.Parameter(torch.full((k,), 1.0 / k if prior_mean is None else prior_mean))
        self.prior_variance_raw = nn.Parameter(torch.full((k,), inverse_softplus(1.0 - 1.0 / k)))
        self.beta = nn.Parameter(torch.empty(k, bag_size))
        nn.init.xavier_uniform_(self.beta)
        self.beta_norm = nn.BatchNorm1d(bag_size, affine=False)
        self.theta_dropout = nn.Dropout(dropout if theta_dropout is None else theta_dropout)

    @property
    def prior_variance(self) -> torch.Tensor:
        return F.softplus(self.prior_variance_raw)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """θ (sampled), the posterior's mean and log-variance, the per-row KL and the bag distribution."""
        mean, log_variance = self.inference(x)
        sample = mean + torch.randn_like(mean) * (0.5 * log_variance).exp() if self.training else mean
        theta = F.softmax(sample, dim=1)
        return {
            "theta": theta,
            "mean": mean,
            "log_variance": log_variance,
            "kl": gaussian_kl(mean, log_variance, self.prior_mean, self.prior_variance),
            "distribution": self.mix(self.theta_dropout(theta), self.beta, self.beta_norm),
        }

    @staticmethod
    def mix(theta: torch.Tensor, beta: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        """softmax(BN(θ β)) in float32 (the log of it feeds the reconstruction loss)."""
        return F.softmax(norm(theta.float() @ beta.float()), dim=1)


def bag_nll(bag: torch.Tensor, distribution: torch.Tensor) -> torch.Tensor:
    """−Σ bag · log p per row: the multinomial reconstruction term of a bag of counts."""
    return -(bag * torch.log(distribution + 1e-10)).sum(1)


class ConceptToWords(nn.Module):
    """TVQ-VAE's "alpha" module: topics over codes -> topics over real words.

    β_n = L2norm(β · L2norm(codebook)) gives each topic a vector in code space; an inference-network-shaped MLP
    maps it to a row over the V words (its mean head, BatchNorm across the K topics, so each word is
    standardized over topics), β_o. The words of a document then follow softmax(BN(θ β_o)); β_o is the
    topic-word matrix that is evaluated.
    """

    def __init__(
        self, code_dim: int, vocab_size: int, hidden: Sequence[int] = (100, 100), dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.net = InferenceNetwork(code_dim, vocab_size, hidden, dropout)
        self.word_norm = nn.BatchNorm1d(vocab_size, affine=False)

    def topic_words(self, beta: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        beta_n = F.normalize(beta.float() @ F.normalize(codebook.float(), dim=1), dim=1)
        return self.net(beta_n)[0]

    def forward(
        self, theta: torch.Tensor, beta: torch.Tensor, codebook: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(word distribution per document, β_o)."""
        beta_o = self.topic_words(beta, codebook)
        return ProdLDA.mix(theta, beta_o, self.word_norm), beta_o
