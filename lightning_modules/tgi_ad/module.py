"""The generation step of text-guided variational image generation, as one LightningModule.

``fit`` on a category's few normal images (``MVTecDataModule`` with ``shots``) trains the variance-aware generator
in ``rounds``; at the end of each round it draws ``samples_per_image`` variants of every normal image, scores them
with CLIP against the best WordNet prompts and their source image, keeps the best ``keep`` (outliers rejected),
and mixes the kept images into the next round's training batches. At the end of fit the last round's kept images
are written in the MVTec layout, ``<output_dir>/<category>/train/good/``, so any baseline trains on them through
its unchanged config: ``--data.init_args.extra_normal_dir <output_dir>``. Generated images never reach a test split.
TensorBoard: the real normals, the candidates, kept vs rejected ones; the chosen prompts as text. This file trains
the generator; the rounds and what they write are ``generation_rounds.py``.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import torch
import torch.nn.functional as F

from datamodules.batch import batch_size_of
from lightning_modules.components.feature_extractor import FrozenFeatures
from lightning_modules.components.patch_discriminator import PatchDiscriminator
from lightning_modules.components.resizable_buffers import ResizableBuffersMixin
from lightning_modules.outputs.checkpoints import RunCheckpointError, read_run_checkpoint
from lightning_modules.routines.base import EvaluationRoutine
from lightning_modules.tgi_ad.generation_rounds import GenerationRounds
from lightning_modules.tgi_ad.networks import VarianceAwareVQGAN, generator_loss
from lightning_modules.tgi_ad.prompts import TEMPLATES
from lightning_modules.tgi_ad.text_scorers import TextScorerChoice, check_text_scorer

log = logging.getLogger(__name__)


def read_prior(path: str, width: int, code_dim: int, num_codes: int, downsamplings: int) -> dict[str, Any]:
    """The generator weights of a prior run (``configs/tgi_ad_prior.yaml``), after checking its sizes."""
    h, state = read_run_checkpoint(
        path, "model.init_args.prior_path", "generator.", "tgi_ad_prior.yaml", "generator prior", "code_dim"
    )
    wanted = {"width": width, "code_dim": code_dim, "num_codes": num_codes, "downsamplings": downsamplings}
    differ = {k: (h.get(k), v) for k, v in wanted.items() if h.get(k) != v}
    if differ:
        said = ", ".join(f"{k} {prior} (here {here})" for k, (prior, here) in differ.items())
        raise RunCheckpointError(f"model.init_args.prior_path={path!r}: the prior's generator has {said}")
    return state


def read_prior_discriminator(path: str) -> dict[str, Any] | None:
    """The discriminator weights of a prior trained with ``adversarial_weight`` > 0, or None (a fresh one)."""
    try:
        return read_run_checkpoint(
            path,
            "model.init_args.prior_path",
            "discriminator.",
            "tgi_ad_prior.yaml",
            "generator prior",
            "code_dim",
        )[1]
    except RunCheckpointError:
        return None


class TextGuidedGenerationModule(GenerationRounds, ResizableBuffersMixin, EvaluationRoutine):
    """Variance-aware generator + keyword-to-prompt + text-guided selector, iterated.

    Args:
        keyword: The object's name for WordNet (null: the data's category name).
        clip_path: Local CLIP folder (the paper's scorer; first choice when given).
        text_scorer: ``auto`` (CLIP from ``clip_path`` when given, else the DeViSE-style bridge of the packaged
            ImageNet classifier and sentence encoder, else a tiny random CLIP that the run names as a stand-in),
            or ``clip``, ``devise``, ``random`` (``text_scorers.py``).
        text_weight: Weight of the prompt similarity in the selection score (1, the paper's); 0 drops the text
            term (the prompts are still ranked and logged) where the scorer was measured not to rank a category's
            own images above others' (``scripts/check_standin.py --scorer devise``); said in generation.json.
        templates: Prompt templates with ``{w}``.
        top_prompts: Best-ranked prompts whose mean embedding guides the selection (3).
        width, code_dim, num_codes, downsamplings: Generator sizes (``code_dim``: the latent / code width; not
            named latent_dim, which the CLI links from video data).
        prior_path: The generator's starting weights: a ``configs/tgi_ad_prior.yaml`` run folder or checkpoint
            (trained once on photos of other things, ``prior.py``), fine-tuned here; null: from scratch.
        freeze_decoder: Keep the prior's decoder and codebook as they are and fine-tune the encoder alone (needs
            ``prior_path``). The prior's decoder renders sampled codes differently (more spread), but it never
            learnt the category: its samples look like the prior's photos (measured in the README).
        decoder_learns_from: ``sample`` (the quantized z = μ + tσε, the paper's objective in our reading) or
            ``mean`` (ours: the decoder learns from the quantized μ, and the sample's reconstruction trains the
            encoder alone), see ``VarianceAwareVQGAN``; the patch-GAN term then judges the mean's reconstruction.
        kl_weight, feature_weight: Loss weights (λ_KL 1e-3; the feature distance through ``feature_backbone``).
        adversarial_weight: Weight of VQGAN's patch-GAN term (hinge loss; the generator's term -D(x̂)), which
            the paper's VQGAN is trained with and L1 + feature losses alone lack: their reconstructions are
            blurred. 0: no discriminator (the CPU default). A fixed weight, not VQGAN's adaptive one. With it
            Lightning counts two optimizer steps per batch (``trainer.max_steps`` counts both).
        discriminator_width, discriminator_layers: Size of the PatchGAN discriminator (with ``adversarial_weight``;
            started from the prior's when the prior was trained with one).
        min_std: Floor of the generator's σ (0.3; 0: none), so its samples keep their spread.
        feature_backbone, pretrained, pretrained_path: Frozen timm CNN of the feature (perceptual) loss.
        lr: Adam learning rate.
        rounds: Generation / selection rounds, spread evenly over the epochs.
        samples_per_image: Variants drawn per normal image and round (S = 8).
        temperature: σ scale of the sampling (t = 1).
        keep: Generated images kept per round (200 per category in our reading).
        per_source: Keep at most ⌈keep / normals⌉ per real normal (true), or the global best ``keep`` (false:
            with near-copies it keeps one source's images only).
        gamma: Weight of the similarity to the source image in the selection score (0.5); 0 whenever the CLIP
            scorer is the random stand-in (its embeddings reward copies of the source; said in generation.json).
        outlier_z: Outlier rejection threshold in standard deviations (null: none).
        output_dir: Where the kept images are written, in the MVTec layout (null: ``<run folder>/generated``).
    """

    resizable_buffers = ("accepted",)  # grows from empty during fit
    weights_keys = ("feature_backbone", "pretrained", "pretrained_path")

    def __init__(
        self,
        keyword: str | None = None,
        clip_path: str | None = None,
        text_scorer: TextScorerChoice = "auto",
        text_weight: float = 1.0,
        templates: tuple[str, ...] = TEMPLATES,
        top_prompts: int = 3,
        width: int = 64,
        code_dim: int = 64,
        num_codes: int = 512,
        downsamplings: int = 3,
        prior_path: str | None = None,
        freeze_decoder: bool = False,
        decoder_learns_from: Literal["sample", "mean"] = "sample",
        kl_weight: float = 1e-3,
        feature_weight: float = 1.0,
        adversarial_weight: float = 0.0,
        discriminator_width: int = 32,
        discriminator_layers: int = 3,
        min_std: float = 0.3,
        feature_backbone: str = "resnet18",
        pretrained: bool = True,
        pretrained_path: str | None = None,
        lr: float = 2e-4,
        rounds: int = 2,
        samples_per_image: int = 8,
        temperature: float = 1.0,
        keep: int = 200,
        per_source: bool = True,
        gamma: float = 0.5,
        outlier_z: float | None = 3.0,
        output_dir: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_text_scorer(text_scorer)
        if rounds < 1 or samples_per_image < 1 or keep < 1:
            raise ValueError("model.init_args.rounds, samples_per_image and keep must be >= 1")
        if text_weight < 0:
            raise ValueError(f"model.init_args.text_weight must be >= 0, got {text_weight}")
        if adversarial_weight < 0:
            raise ValueError(f"model.init_args.adversarial_weight must be >= 0, got {adversarial_weight}")
        # manual: the discriminator, when there is one, steps after the generator on the same batch
        self.automatic_optimization = False
        self.generator = VarianceAwareVQGAN(
            width,
            code_dim,
            num_codes,
            downsamplings,
            min_std=min_std,
            decoder_learns_from=decoder_learns_from,
        )
        if prior_path:
            self.generator.load_state_dict(read_prior(prior_path, width, code_dim, num_codes, downsamplings))
        if freeze_decoder:
            if not prior_path:
                raise ValueError(
                    "model.init_args.freeze_decoder=true needs model.init_args.prior_path: a decoder that is "
                    "never trained renders nothing"
                )
            self.generator.freeze_decoder()
        self.discriminator = None
        if adversarial_weight:
            self.discriminator = PatchDiscriminator(3, discriminator_width, discriminator_layers)
            prior_discriminator = read_prior_discriminator(prior_path) if prior_path else None
            if prior_discriminator is not None:
                self.discriminator.load_state_dict(prior_discriminator)
        self.features = (
            FrozenFeatures(feature_backbone, (1, 2), pretrained, pretrained_path) if feature_weight else None
        )
        # the kept images so far (in the checkpoint: resumable)
        self.register_buffer("accepted", torch.empty(0))
        self._normals: dict[str, torch.Tensor] = {}
        self.prompts: list[tuple[str, float]] = []
        self._scorer = None  # CLIP, loaded at the first round and kept for the next ones
        self.statistics: dict[str, Any] = {}  # the last round's counts and diversity, for generation.json

    # ------------------------------------------------------------------------------------------ training
    def _feature_maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The frozen CNN's maps, with gradients to the input (FrozenFeatures' own forward has none)."""
        return self.features.body(self.features.normalize(images))

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        if not batch_size_of(batch):
            return None
        images = batch["image"]
        for path, image in zip(batch["path"], images, strict=True):
            self._normals.setdefault(path, image.detach().cpu())
        if len(self.accepted):  # mix the images accepted so far into the batch
            extra = self.accepted[torch.randint(len(self.accepted), (len(images),))].to(images)
            images = torch.cat([images, extra])
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        if self.discriminator is not None:
            self.discriminator.requires_grad_(False)  # the generator's step moves the generator alone
        out = self.generator(images, self.hparams.temperature)
        terms = generator_loss(
            images,
            out,
            self._feature_maps if self.features is not None else None,
            self.hparams.kl_weight,
            self.hparams.feature_weight,
        )
        if self.discriminator is not None:
            judged = out.get("mean_reconstruction", out["reconstruction"])  # the one that trains the decoder
            terms["adversarial"] = -self.hparams.adversarial_weight * self.discriminator(judged).mean()
            terms["total"] = terms["total"] + terms["adversarial"]
        self._step(optimizers[0], terms["total"])
        if self.discriminator is not None:  # hinge loss: the real shots against the reconstructions
            self.discriminator.requires_grad_(True)
            real = self.discriminator(batch["image"])
            fake = self.discriminator(judged.detach())
            terms["discriminator"] = F.relu(1 - real).mean() + F.relu(1 + fake).mean()
            self._step(optimizers[1], terms["discriminator"])
        self.log_dict(
            {f"train/{k}": v.detach() for k, v in terms.items()}, prog_bar=True, batch_size=len(images)
        )
        return terms["total"].detach()

    def _step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """[generator] or [generator, discriminator] (VQGAN's betas for both)."""
        trained = [p for p in self.generator.parameters() if p.requires_grad]
        found = [torch.optim.Adam(trained, lr=self.hparams.lr, betas=(0.5, 0.9))]
        if self.discriminator is not None:
            found.append(
                torch.optim.Adam(self.discriminator.parameters(), lr=self.hparams.lr, betas=(0.5, 0.9))
            )
        return found

    def on_train_epoch_end(self) -> None:
        epochs = max(1, int(self.trainer.max_epochs or 1))
        per_round = max(1, epochs // self.hparams.rounds)
        if (self.current_epoch + 1) % per_round == 0 or self.current_epoch + 1 == epochs:
            self.generate_and_select()

    def _reconstruction(self, batch: dict[str, Any], stage: str) -> None:
        """How well the generator rebuilds held-out images at t = 0 (its fit; no anomaly metric here)."""
        if batch_size_of(batch):
            with torch.no_grad():
                rebuilt = self.generator(batch["image"], temperature=0.0)["reconstruction"].float()
            error = rebuilt - batch["image"]
            self.log_dict(
                {f"{stage}/l1": error.abs().mean(), f"{stage}/mse": (error**2).mean()},
                batch_size=batch_size_of(batch),
            )

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._reconstruction(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._reconstruction(batch, "test")

    def on_test_epoch_end(self) -> None:
        metrics = {
            k.split("/")[1]: float(v)
            for k, v in self.trainer.callback_metrics.items()
            if k.startswith("test/")
        }
        if self.trainer.is_global_zero and metrics:
            title = "Variance-aware generator: reconstruction of test images (t = 0)"
            self.write_table([{"group": "test images", **metrics}], list(metrics), title, digits=4)
