"""FingerprintNet training without any generated image: fit the autoencoders on reals, then the detector on
reals vs their reconstructions. One module, one config, one ``fit``: the phase follows the epoch."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from datamodules.batch import batch_size_of
from lightning_modules.components.backbones import SMALL_BACKBONE_SMOKE, Normalize
from lightning_modules.components.binary_head import BinaryLogitNet
from lightning_modules.components.tensor_augment import jpeg_roundtrip, random_blur, random_jpeg
from lightning_modules.fingerprintnet.networks import (
    DetectorInput,
    FingerprintGenerator,
    Representation,
    input_channels,
)
from lightning_modules.outputs.pictures import signed_picture, spectrum_picture
from lightning_modules.routines.binary_detection import BinaryDetectionRoutine


class FingerprintNetModule(BinaryDetectionRoutine):
    """Artificial fingerprints from a family of autoencoders; a detector trained on real images only.

    * Epochs ``[0, ae_epochs)``: every autoencoder AE_k learns to reconstruct the real images (L1).
    * From then on the autoencoders are frozen; each real image x gets a pseudo-fake AE_k(x) with k drawn
      uniformly (1 : 1 real : pseudo-fake), optionally JPEG re-encoded like the reals; the same blur / JPEG
      augmentation is then applied to both classes, and the detector learns x (0) vs AE_k(x) (1) on their
      log spectra. Validation does the same with fixed draws; ``test`` scores real generated images.

    The datamodule should read reals only (``real_only: true``): no generated image is ever used.

    Args:
        backbone: timm name of the detector (the paper: ``resnet50``).
        pretrained: ImageNet weights for the detector (the stem is adapted to 6 channels for ``both``).
        pretrained_path: Local weights file for the detector.
        representation: Detector input: ``spectrum``, ``residual_spectrum``, ``image`` or ``both``.
        ae_stages: Up-sampling stages of each autoencoder (one autoencoder per entry).
        ae_width: Bottleneck width of the autoencoders.
        ae_epochs: Epochs spent fitting the autoencoders before the detector phase.
        ae_lr: Adam learning rate of the autoencoders.
        lr: Adam learning rate of the detector.
        fake_jpeg_quality: JPEG quality range for re-encoding pseudo-fakes (reals are JPEG in LSUN); null: off.
        blur_prob: Probability of Gaussian blur on each image of either class (after pseudo-fakes are made).
        blur_sigma: Range of that blur's sigma.
        jpeg_prob: Probability of JPEG re-compression on each image of either class.
        jpeg_quality: Range of that JPEG quality.
        threshold: Fake-probability threshold for ACC and predicted labels.
        num_pictures: Images per TensorBoard picture.
    """

    SMOKE_ARGUMENTS = SMALL_BACKBONE_SMOKE

    def __init__(
        self,
        backbone: str = "resnet50",
        pretrained: bool = True,
        pretrained_path: str | None = None,
        representation: Representation = "spectrum",
        ae_stages: list[int] | None = None,
        ae_width: int = 256,
        ae_epochs: int = 20,
        ae_lr: float = 2e-4,
        lr: float = 1e-4,
        fake_jpeg_quality: tuple[int, int] | None = (75, 95),
        blur_prob: float = 0.5,
        blur_sigma: tuple[float, float] = (0.0, 3.0),
        jpeg_prob: float = 0.5,
        jpeg_quality: tuple[int, int] = (30, 100),
        threshold: float = 0.5,
        num_pictures: int = 8,
    ) -> None:
        super().__init__(lr=lr, threshold=threshold)
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = FingerprintGenerator(ae_stages or [1, 2, 3, 4], ae_width)
        self.classifier = BinaryLogitNet(
            backbone, pretrained, pretrained_path, in_chans=input_channels(representation), normalize=False
        )
        self.detector_input = DetectorInput(representation, Normalize.of_backbone(self.classifier.backbone))

    @property
    def in_autoencoder_phase(self) -> bool:
        return self.current_epoch < self.hparams.ae_epochs

    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.classifier(self.detector_input(batch["image"]))

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """[autoencoders, detector]."""
        return [
            torch.optim.Adam(self.generator.parameters(), lr=self.hparams.ae_lr, betas=(0.5, 0.999)),
            torch.optim.Adam(self.classifier.parameters(), lr=self.lr, betas=(0.9, 0.999)),
        ]

    # ------------------------------------------------------------------------------------- pseudo-fakes
    @torch.no_grad()
    def pseudo_fake_batch(
        self, batch: dict[str, Any], generator: torch.Generator | None = None
    ) -> dict[str, Any]:
        """Reals plus one pseudo-fake each (AE drawn uniformly), labels 0 then 1; groups and paths repeated."""
        reals = batch["image"]
        choice = torch.randint(len(self.generator.autoencoders), (len(reals),), generator=generator).to(
            reals.device
        )
        was_training = self.generator.training
        self.generator.eval()
        fakes = self.generator(reals, choice).clamp(0, 1)
        self.generator.train(was_training)
        if self.hparams.fake_jpeg_quality:
            low, high = self.hparams.fake_jpeg_quality
            qualities = torch.randint(low, high + 1, (len(fakes),), generator=generator)
            fakes = torch.stack([jpeg_roundtrip(f, int(q)) for f, q in zip(fakes, qualities, strict=True)])
        labels = torch.cat([torch.zeros(len(reals)), torch.ones(len(fakes))]).long().to(reals.device)
        out: dict[str, Any] = {"image": torch.cat([reals, fakes]), "label": labels}
        for key in ("group", "path"):
            if key in batch:
                out[key] = list(batch[key]) * 2
        return out

    # ------------------------------------------------------------------------------------------ training
    def on_train_epoch_start(self) -> None:
        if not self.in_autoencoder_phase:
            self.generator.eval()  # frozen: BatchNorm uses its running statistics
            self.generator.requires_grad_(False)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        size = batch_size_of(batch)
        if size == 0:
            return
        opt_ae, opt_detector = self.optimizers()
        if self.in_autoencoder_phase:
            reals = batch["image"]
            losses = [F.l1_loss(ae(reals).float(), reals.float()) for ae in self.generator.autoencoders]
            loss = torch.stack(losses).sum()
            opt_ae.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            opt_ae.step()
            logs = {
                f"train/ae{k}_l1": value.detach()
                for k, value in zip(self.generator.stages, losses, strict=True)
            }
            self.log_dict(
                logs | {"train/ae_l1": loss.detach() / len(losses)}, prog_bar=False, batch_size=size
            )
            return
        pair = self.pseudo_fake_batch(batch)
        images = random_blur(pair["image"], self.hparams.blur_prob, tuple(self.hparams.blur_sigma))
        images = random_jpeg(images, self.hparams.jpeg_prob, tuple(self.hparams.jpeg_quality))
        logits = self.classifier(self.detector_input(images))
        loss = self.loss(logits, pair)
        opt_detector.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt_detector.step()
        accuracy = ((logits.detach() > 0).long() == pair["label"]).float().mean()
        self.log_dict(
            {"train/loss": loss.detach(), "train/acc": accuracy}, prog_bar=True, batch_size=2 * size
        )

    # ---------------------------------------------------------------------------------------- validation
    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Reals vs pseudo-fakes drawn with a per-batch seed (the same every epoch), plus AE reconstruction."""
        if batch_size_of(batch) == 0:
            return
        reals = batch["image"]
        for k, autoencoder in zip(self.generator.stages, self.generator.autoencoders, strict=True):
            self.log(
                f"val/ae{k}_l1", F.l1_loss(autoencoder(reals).float(), reals.float()), batch_size=len(reals)
            )
        pair = self.pseudo_fake_batch(batch, generator=torch.Generator().manual_seed(batch_idx))
        logits = self.classifier(self.detector_input(pair["image"]))
        self.log("val/loss", self.loss(logits, pair), batch_size=len(pair["label"]), sync_dist=True)
        self.val_metrics.update(torch.sigmoid(logits.float()), pair["label"], pair.get("group"))

    # ------------------------------------------------------------------------------------------ pictures
    @torch.no_grad()
    def pictures(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Per autoencoder depth: reconstructions, fingerprints (reconstruction - input) and their spectra."""
        reals = batch["image"][: self.hparams.num_pictures].float()
        pictures = {"input": reals, "input_spectrum": spectrum_picture(reals)}
        for k, autoencoder in zip(self.generator.stages, self.generator.autoencoders, strict=True):
            reconstruction = autoencoder(reals).float()
            fingerprint = reconstruction - reals
            pictures[f"ae{k}_reconstruction"] = reconstruction.clamp(0, 1)
            pictures[f"ae{k}_fingerprint"] = signed_picture(fingerprint)
            pictures[f"ae{k}_fingerprint_spectrum"] = spectrum_picture(fingerprint)
        return pictures
