"""The variance-aware generator: a VQGAN-style autoencoder whose encoder predicts a Gaussian per latent position.

Our reading of the paper (no public code): the encoder head outputs (μ, log σ²) per cell,
z = μ + t·σ·ε is drawn with the reparameterization trick (temperature t) *before* quantization, and the decoder
rebuilds the image from the quantized z. Trained on the few normal images with reconstruction, feature
(perceptual), codebook / commitment and KL(N(μ, σ²) ‖ N(0, I)) terms, it maps each image to a distribution of
nearby normal images: sampling many z per image gives normal variants. The quantizer is the TVQ-VAE's (one code
per position), the residual block the image VQ-VAE's. VQGAN's patch-GAN term lives in the module
(``adversarial_weight``, off by default: a CPU budget), beside a discriminator.

``min_std`` floors σ. Trained on a few images with the KL weighted 1e-3 on a mean over cells, σ collapsed from
0.50 to 0.086 within 75 steps, and the samples of one image became near-copies; a floor keeps the sampling's
spread whatever the KL's weight (ours: the paper gives no such detail).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from lightning_modules.components.vector_quantization import MultiHotQuantizer, ResidualBlock

LOG_VARIANCE_RANGE = (-10.0, 4.0)


class VarianceAwareVQGAN(nn.Module):
    """Images in [0, 1] (B, 3, H, W) -> (μ, log σ²) of a (B, latent_dim, H/2^d, W/2^d) Gaussian -> sample ->
    nearest codes -> images in [0, 1].

    Args:
        width: Channels of the first stage (doubled per down-sampling, at most 4x).
        latent_dim: Code width.
        num_codes: Codebook size.
        downsamplings: Stride-2 stages (3: f8).
        commitment: Commitment cost of the quantizer.
        min_std: Floor of σ (0: none; log σ² is otherwise clamped to ``LOG_VARIANCE_RANGE``).
        decoder_learns_from: What the decoder is trained to rebuild the image from. ``sample``: the quantized
            sample z = μ + tσε (the paper's VQGAN objective, our reading). ``mean`` (ours): the quantized μ; the
            sample's reconstruction still trains the encoder (μ and σ), through the decoder's weights without
            changing them, so the decoder is never taught to undo the sampling. Measured (the README's sampling
            sweep): that alone adds no spread; a decoder is smooth in code space however it is trained.
    """

    def __init__(
        self,
        width: int = 64,
        latent_dim: int = 64,
        num_codes: int = 512,
        downsamplings: int = 3,
        commitment: float = 0.25,
        min_std: float = 0.0,
        decoder_learns_from: Literal["sample", "mean"] = "sample",
    ) -> None:
        super().__init__()
        if min_std < 0:
            raise ValueError(f"min_std must be >= 0, got {min_std}")
        if decoder_learns_from not in ("sample", "mean"):
            raise ValueError(f"decoder_learns_from must be sample or mean, got {decoder_learns_from!r}")
        self.decoder_learns_from = decoder_learns_from
        low, high = LOG_VARIANCE_RANGE
        self.log_variance_range = (max(low, 2 * math.log(min_std)) if min_std > 0 else low, high)
        widths = [min(width * 2**i, 4 * width) for i in range(downsamplings + 1)]
        down: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, 1, 1)]
        for a, b in zip(widths, widths[1:], strict=False):
            down += [ResidualBlock(a), nn.Conv2d(a, b, 4, 2, 1)]
        self.encoder = nn.Sequential(*down, ResidualBlock(widths[-1]), nn.ReLU())
        self.head = nn.Conv2d(widths[-1], 2 * latent_dim, 1)  # μ and log σ²
        self.quantizer = MultiHotQuantizer(
            num_codes, latent_dim, top_n=1, commitment=commitment, codebook_init="data"
        )
        up: list[nn.Module] = [nn.Conv2d(latent_dim, widths[-1], 3, 1, 1), ResidualBlock(widths[-1])]
        for a, b in zip(widths[::-1], widths[-2::-1], strict=False):
            up += [nn.ReLU(), nn.ConvTranspose2d(a, b, 4, 2, 1), ResidualBlock(b)]
        self.decoder = nn.Sequential(*up, nn.ReLU(), nn.Conv2d(widths[0], 3, 3, 1, 1), nn.Sigmoid())
        self.latent_dim = latent_dim
        self.decoder_frozen = False

    def freeze_decoder(self) -> None:
        """Fix the decoder and the codebook (no gradients, no dead-code restarts): only the encoder learns, so a
        prior's decoder keeps rendering different codes as different images."""
        for parameter in [*self.decoder.parameters(), *self.quantizer.parameters()]:
            parameter.requires_grad_(False)
        self.quantizer.dead_code_restart = False
        self.quantizer.initialized.fill_(True)
        self.decoder_frozen = True
        self.decoder.eval()

    def train(self, mode: bool = True) -> VarianceAwareVQGAN:
        """As ``nn.Module.train``, but a frozen decoder stays in eval mode: its batch norms keep the prior's
        statistics instead of learning the few normals'."""
        super().train(mode)
        if self.decoder_frozen:
            self.decoder.eval()
        return self

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, log σ²), each (B, latent_dim, h, w); σ² = exp(log σ²) > 0 (log σ² clamped to a safe range, and
        from below at the σ floor)."""
        mean, log_variance = self.head(self.encoder(images * 2 - 1)).chunk(2, dim=1)
        return mean, log_variance.clamp(*self.log_variance_range)

    @staticmethod
    def sample(mean: torch.Tensor, log_variance: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """z = μ + t σ ε (the reparameterization trick); t = 0 gives μ."""
        if temperature == 0:
            return mean
        return mean + temperature * torch.exp(0.5 * log_variance) * torch.randn_like(mean)

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(quantized z, VQ loss, code indices (B, h, w))."""
        b, d, h, w = z.shape
        quantized, loss, encodings, _ = self.quantizer(z.permute(0, 2, 3, 1).reshape(-1, d))
        return quantized.reshape(b, h, w, d).permute(0, 3, 1, 2), loss, encodings.argmax(1).reshape(b, h, w)

    def forward(self, images: torch.Tensor, temperature: float = 1.0) -> dict[str, torch.Tensor]:
        """``reconstruction`` from the quantized sample; with ``decoder_learns_from="mean"`` in training, also
        ``mean_reconstruction`` from the quantized μ, and the sample's reconstruction leaves the decoder's weights
        out of its gradient (one quantizer call for both, so dead-code counts advance once per step)."""
        mean, log_variance = self.encode(images)
        z = self.sample(mean, log_variance, temperature)
        from_mean = self.training and self.decoder_learns_from == "mean" and temperature != 0
        quantized, vq_loss, codes = self.quantize(torch.cat([z, mean]) if from_mean else z)
        kl = 0.5 * (mean**2 + log_variance.exp() - log_variance - 1).mean()
        out = {"mean": mean, "log_variance": log_variance, "vq_loss": vq_loss, "kl": kl}
        if not from_mean:
            return out | {"reconstruction": self.decoder(quantized), "codes": codes}
        sampled, of_mean = quantized.chunk(2)
        weights = {n: p.detach() for n, p in self.decoder.named_parameters()}
        weights |= dict(self.decoder.named_buffers())
        return out | {
            "reconstruction": functional_call(self.decoder, weights, (sampled,)),
            "mean_reconstruction": self.decoder(of_mean),
            "codes": codes.chunk(2)[0],
        }

    @torch.no_grad()
    def generate(self, images: torch.Tensor, samples: int, temperature: float = 1.0) -> torch.Tensor:
        """``samples`` variants of every image, (B * samples, 3, H, W) in [0, 1], image-major."""
        mean, log_variance = self.encode(images)
        mean, log_variance = (t.repeat_interleave(samples, dim=0) for t in (mean, log_variance))
        quantized, _, _ = self.quantize(self.sample(mean, log_variance, temperature))
        return self.decoder(quantized)


def generator_loss(
    images: torch.Tensor,
    out: dict[str, torch.Tensor],
    features=None,
    kl_weight: float = 1e-3,
    feature_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """L1 reconstruction + feature (perceptual) distance + VQ + λ_KL · KL; the reconstruction terms again for
    ``mean_reconstruction`` when there is one (``l1_mean``, ``feature_mean``). ``features`` maps images to a list
    of feature maps and must let gradients reach its input (a frozen network called without ``no_grad``)."""
    terms = {"vq": out["vq_loss"], "kl": kl_weight * out["kl"]}
    rebuilt = {"": out["reconstruction"].float()}
    if "mean_reconstruction" in out:
        rebuilt["_mean"] = out["mean_reconstruction"].float()
    real = None
    if features is not None and feature_weight:
        with torch.no_grad():
            real = features(images)
    for suffix, image in rebuilt.items():
        terms["l1" + suffix] = (image - images).abs().mean()
        if real is not None:
            fake = features(image)
            distance = sum(
                F.mse_loss(F.normalize(f, dim=1), F.normalize(r, dim=1))
                for f, r in zip(fake, real, strict=True)
            )
            terms["feature" + suffix] = feature_weight * distance
    terms["total"] = sum(terms.values())
    return terms
