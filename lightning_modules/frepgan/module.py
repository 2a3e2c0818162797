"""FrePGAN training: the perturbation GAN and the detector updated alternately within every iteration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from datamodules.batch import batch_size_of
from lightning_modules.components.backbones import SMALL_BACKBONE_SMOKE
from lightning_modules.components.binary_head import BinaryLogitNet
from lightning_modules.components.patch_discriminator import PatchDiscriminator
from lightning_modules.frepgan.networks import SpectralPerturbationGenerator
from lightning_modules.outputs.pictures import signed_picture, spectrum_picture
from lightning_modules.routines.binary_detection import BinaryDetectionRoutine


class FrePGANModule(BinaryDetectionRoutine):
    """Frequency-level perturbation GAN + detector (manual optimization, three optimizers).

    Each training iteration, in the order of the paper's Algorithm 1:

    1. D: ``BCE(D(x_real), 1) + BCE(D(x_fake + G(x_fake)), 0)``
    2. G: ``BCE(D(x_fake + G(x_fake)), 1) + lambda_perturbation * mean|G(x_fake)|``
    3. C: ``BCE(C(x + s * G(x)), y)`` on reals and fakes alike, G detached (``detach_for_classifier``)

    ``s`` is ``perturbation_scale`` (a buffer, so the checkpoint keeps the value training ended with); a
    :class:`callbacks.ScheduleCallback` ramps it, so C first learns the frequency artefacts and later has to look
    past them. Validation, test and predict score ``sigmoid(C(x + s * G(x)))``, or ``sigmoid(C(x))`` with
    ``test_perturb: false``.

    Args:
        backbone: timm name of the classifier C (the paper: ``resnet50``).
        pretrained: ImageNet weights for C.
        pretrained_path: Local weights file for C.
        generator_width: Base width of G's image-to-image network H (pix2pix: 64).
        generator_blocks: Residual blocks of H (pix2pix: 6).
        discriminator_width: Base width of D.
        discriminator_layers: Strided layers of the PatchGAN D (3).
        bound_eps: Bound G as ``eps * tanh(G)`` (null: unbounded; 0.1 when on, our reading).
        lambda_perturbation: Weight of ``mean|G(x)|`` in G's loss.
        perturbation_scale: Initial ``s`` (a schedule callback overrides it during training).
        test_perturb: Score perturbed images at validation/test/predict (false bypasses G).
        detach_for_classifier: Stop C's loss from reaching G (our reading).
        lr: Adam learning rate of C (Wang et al.: 1e-4, betas 0.9/0.999).
        gan_lr: Adam learning rate of G and D.
        gan_betas: Adam betas of G and D (pix2pix: 0.5, 0.999).
        gradient_clip_val: Clip each network's gradient norm (manual optimization ignores the Trainer's).
        threshold: Fake-probability threshold for ACC and predicted labels.
        num_pictures: Images per TensorBoard picture.
    """

    SMOKE_ARGUMENTS = SMALL_BACKBONE_SMOKE

    def __init__(
        self,
        backbone: str = "resnet50",
        pretrained: bool = True,
        pretrained_path: str | None = None,
        generator_width: int = 64,
        generator_blocks: int = 6,
        discriminator_width: int = 64,
        discriminator_layers: int = 3,
        bound_eps: float | None = None,
        lambda_perturbation: float = 1.0,
        perturbation_scale: float = 1.0,
        test_perturb: bool = True,
        detach_for_classifier: bool = True,
        lr: float = 1e-4,
        gan_lr: float = 2e-4,
        gan_betas: tuple[float, float] = (0.5, 0.999),
        gradient_clip_val: float | None = None,
        threshold: float = 0.5,
        num_pictures: int = 8,
    ) -> None:
        super().__init__(lr=lr, threshold=threshold)
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = SpectralPerturbationGenerator(3, generator_width, generator_blocks, bound_eps)
        self.discriminator = PatchDiscriminator(3, discriminator_width, discriminator_layers)
        self.classifier = BinaryLogitNet(backbone, pretrained, pretrained_path)
        self.register_buffer("perturbation_scale", torch.tensor(float(perturbation_scale)))
        self.test_perturb = test_perturb

    @property
    def results_name(self) -> str:
        return "results" if self.test_perturb else "results_unperturbed"

    def perturbed(self, x: torch.Tensor) -> torch.Tensor:
        """What C sees: ``x + s * G(x)``."""
        return x + self.perturbation_scale * self.generator(x)

    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        x = batch["image"]
        return self.classifier(self.perturbed(x) if self.test_perturb else x)

    # ------------------------------------------------------------------------------------------ training
    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """[D, G, C], the order they step in."""
        gan = {"lr": self.hparams.gan_lr, "betas": tuple(self.hparams.gan_betas)}
        return [
            torch.optim.Adam(self.discriminator.parameters(), **gan),
            torch.optim.Adam(self.generator.parameters(), **gan),
            torch.optim.Adam(self.classifier.parameters(), lr=self.lr, betas=(0.9, 0.999)),
        ]

    def _optimize(self, optimizer, compute_loss: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Forward and backward with only ``optimizer``'s parameters requiring grad, then clip and step."""
        self.toggle_optimizer(optimizer)
        loss = compute_loss()
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.hparams.gradient_clip_val:
            self.clip_gradients(
                optimizer, gradient_clip_val=self.hparams.gradient_clip_val, gradient_clip_algorithm="norm"
            )
        optimizer.step()
        self.untoggle_optimizer(optimizer)
        return loss.detach()

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        size = batch_size_of(batch)
        if size == 0:
            return
        opt_d, opt_g, opt_c = self.optimizers()
        x, labels = batch["image"], batch["label"]
        reals, fakes = x[labels == 0], x[labels == 1]
        logs: dict[str, torch.Tensor] = {}
        if len(reals) and len(fakes):
            with torch.no_grad():
                perturbed_fakes = fakes + self.generator(fakes)
            scores: dict[str, torch.Tensor] = {}

            # 1. D: real images vs perturbed fakes
            def discriminator_loss() -> torch.Tensor:
                scores["real"], scores["fake"] = (
                    self.discriminator(reals),
                    self.discriminator(perturbed_fakes),
                )
                return _bce(scores["real"], 1.0) + _bce(scores["fake"], 0.0)

            # 2. G: perturbed fakes D takes for real, small perturbation
            def generator_loss() -> torch.Tensor:
                perturbation = self.generator(fakes)
                scores["adv"] = _bce(self.discriminator(fakes + perturbation), 1.0)
                scores["l1"] = perturbation.float().abs().mean()
                return scores["adv"] + self.hparams.lambda_perturbation * scores["l1"]

            logs["train/loss_d"] = self._optimize(opt_d, discriminator_loss)
            logs["train/loss_g"] = self._optimize(opt_g, generator_loss)
            d_right = torch.cat([(scores["real"] > 0).flatten(), (scores["fake"] < 0).flatten()])
            logs |= {
                "train/loss_g_adv": scores["adv"].detach(),
                "train/perturbation_l1": scores["l1"].detach(),
                "train/d_acc": d_right.float().mean(),
            }

        outputs: dict[str, torch.Tensor] = {}

        def classifier_loss() -> torch.Tensor:  # 3. C: both classes, perturbed (G detached by default)
            with torch.set_grad_enabled(not self.hparams.detach_for_classifier):
                perturbation = self.generator(x)
            outputs["logits"] = self.classifier(x + self.perturbation_scale * perturbation)
            return self.loss(outputs["logits"], batch)

        loss_c = self._optimize(opt_c, classifier_loss)
        accuracy = ((outputs["logits"].detach() > 0).long() == labels).float().mean()
        self.log_dict(logs, batch_size=size)
        self.log_dict({"train/loss": loss_c, "train/acc": accuracy}, prog_bar=True, batch_size=size)

    # ------------------------------------------------------------------------------------------ pictures
    @torch.no_grad()
    def pictures(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Inputs, perturbation maps (grey = 0), their log spectra, and the perturbed images C sees."""
        x = batch["image"][: self.hparams.num_pictures].float()
        perturbation = self.generator(x).float()
        return {
            "input": x,
            "perturbation": signed_picture(perturbation),
            "perturbation_spectrum": spectrum_picture(perturbation),
            "perturbed": (x + self.perturbation_scale * perturbation).clamp(0, 1),
        }


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits.float(), target))
