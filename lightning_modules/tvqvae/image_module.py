"""TVQ-VAE for images: the image VQ-VAE's training, then the topic model over code maps
with a gated PixelCNN prior conditioned on the topic embedding.

``configs/vqvae_cifar10.yaml`` trains :class:`ImageVQVAEModule`; ``configs/tvqvae_image_cifar10.yaml`` loads it
frozen (``vqvae_path``) and trains :class:`TopicImageModule`: loss = PixelCNN cross-entropy of the code map given
e = (θβ)·codebook (θ without gradient, raw β) + bag-of-codes reconstruction + KL. Test logs the topics' purity
and NMI against the class labels (argmax of the posterior-mean θ) and writes sample grids per topic and
reference-based samples to the run folder and TensorBoard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torchmetrics.aggregation import CatMetric
from torchvision.utils import make_grid, save_image

from lightning_modules.metrics.topics import clustering_scores, purity
from lightning_modules.outputs.checkpoints import read_run_checkpoint
from lightning_modules.outputs.run_outputs import log_image
from lightning_modules.routines.base import EvaluationRoutine
from lightning_modules.tvqvae.image_networks import CodeMapFront, GatedPixelCNN, ImageVQVAE, code_bag
from lightning_modules.tvqvae.networks import ProdLDA, bag_nll, codebook_use


class ImageVQVAEModule(EvaluationRoutine):
    """Trains the image VQ-VAE: MSE on images in [-1, 1] + VQ loss (Adam 2e-4, batch 128, 100 epochs).

    Args:
        dim: Channel width and code width (256).
        num_codes: Codebook size (512).
        commitment: Commitment cost (1.0, the official image VQ-VAE's).
        codebook_init: ``data`` (codes from the first batch, ours), ``normal`` or ``uniform``.
        lr: Adam learning rate.
    """

    def __init__(
        self,
        dim: int = 256,
        num_codes: int = 512,
        commitment: float = 1.0,
        codebook_init: str = "data",
        lr: float = 2e-4,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = ImageVQVAE(3, dim, num_codes, commitment, codebook_init)

    def _step(
        self, batch: dict[str, Any], stage: str
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """(loss, the VQ-VAE's outputs, the images in [-1, 1]), the loss terms logged."""
        images = batch["image"].float() * 2 - 1
        out = self.net(images)
        mse = F.mse_loss(out["reconstruction"].float(), images)
        loss = mse + out["vq_loss"]
        self.log_dict(
            {f"{stage}/loss": loss, f"{stage}/mse": mse, f"{stage}/perplexity": out["perplexity"]},
            prog_bar=True,
            batch_size=len(images),
        )
        return loss, out, images

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")[0]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "val")

    def on_test_epoch_start(self) -> None:
        self._test_sums = torch.zeros(2, device=self.device)  # squared error, pixels
        self._test_usage = torch.zeros(self.net.num_codes, device=self.device)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        _, out, images = self._step(batch, "test")
        self._test_sums += torch.stack(
            [
                ((out["reconstruction"].float() - images) ** 2).sum(),
                torch.tensor(float(images.numel()), device=self.device),
            ]
        )
        self._test_usage += torch.bincount(out["codes"].flatten(), minlength=self.net.num_codes)

    def on_test_epoch_end(self) -> None:
        """The test split's reconstruction MSE and codebook use, as results.csv / results.md."""
        sums = self.trainer.strategy.reduce(self._test_sums, reduce_op="sum")
        usage = self.trainer.strategy.reduce(self._test_usage, reduce_op="sum")
        row = {"mse": float(sums[0] / sums[1].clamp_min(1)), **codebook_use(usage)}
        if self.trainer.is_global_zero:
            title = "Image VQ-VAE: reconstruction MSE ([-1, 1] pixels), codebook use"
            self.write_table([{"group": "test images", **row}], list(row), title, digits=4)

    def pictures(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Images (top) and their reconstructions through the code map (bottom)."""
        with torch.no_grad():
            images = batch["image"][:8]
            rebuilt = (self.net(images * 2 - 1)["reconstruction"].float() + 1) / 2
        return {"reconstruction": torch.cat([images.float(), rebuilt.clamp(0, 1)])}

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def load_image_vqvae(path: str | Path) -> ImageVQVAE:
    """The frozen VQ-VAE of an :class:`ImageVQVAEModule` checkpoint, or of a run folder's newest last.ckpt."""
    h, state = read_run_checkpoint(
        path, "vqvae_path", "net.", "vqvae_cifar10.yaml", "ImageVQVAEModule", "num_codes"
    )
    model = ImageVQVAE(3, h["dim"], h["num_codes"], h["commitment"], h.get("codebook_init", "data"))
    model.load_state_dict(state)
    return model.eval().requires_grad_(False)


class TopicImageModule(EvaluationRoutine):
    """Topics over an image's bag of codes, and a PixelCNN prior that generates code maps from a topic mixture.

    Args:
        vqvae_path: An ImageVQVAEModule checkpoint or its run folder.
        num_topics: K (paper: 10, 20, 50, 100).
        image_size: Side of the input images (the code map is a quarter of it); linked from the data's.
        hidden: Inference-network widths (100, 100).
        dropout: Inference-network dropout (0.2 in the official image model).
        theta_dropout: Dropout on θ before the bag reconstruction (0 in the official image model).
        condition_init: The PixelCNN's condition projections start ``normal`` (N(0, 1), the official code's) or
            ``linear`` (nn.Linear's default).
        prior_dim, prior_layers: Gated PixelCNN width and depth (64, 15).
        lr: Adam learning rate (cosine schedule over the run).
        samples_per_topic: Columns of the per-topic sample grid written at test.
    """

    # what the tests' smoke runs set (benchmarks/config_introspection.py): the test-time sample grids draw every
    # code of every sample through all 15 PixelCNN layers, ~8 s of a smoke run on 2 CPU cores
    SMOKE_ARGUMENTS: dict[str, Any] = {"prior_layers": 2, "samples_per_topic": 2}

    def __init__(
        self,
        vqvae_path: str,
        num_topics: int = 10,
        image_size: int = 32,
        hidden: tuple[int, ...] = (100, 100),
        dropout: float = 0.2,
        theta_dropout: float = 0.0,
        condition_init: Literal["normal", "linear"] = "normal",
        prior_dim: int = 64,
        prior_layers: int = 15,
        lr: float = 1e-3,
        samples_per_topic: int = 8,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.vqvae = load_image_vqvae(vqvae_path)
        num_codes, code_dim = self.vqvae.quantizer.codebook.shape
        self.side = image_size // 4
        front = CodeMapFront(num_codes, self.side, hidden[0])
        self.topic_model = ProdLDA(
            num_codes, num_topics, hidden, dropout, prior_mean=0.0, front=front, theta_dropout=theta_dropout
        )
        self.prior = GatedPixelCNN(
            num_codes, prior_dim, prior_layers, code_dim, condition_init=condition_init
        )
        self.test_theta, self.test_labels, self.test_bags = CatMetric(), CatMetric(), CatMetric()

    def train(self, mode: bool = True):
        super().train(mode)
        self.vqvae.eval()  # frozen, batch norm included
        return self

    def topic_embedding(self, theta: torch.Tensor) -> torch.Tensor:
        """e = (θ β) · codebook: the prior's condition (raw β, as the official code)."""
        return (theta.float() @ self.topic_model.beta.float()) @ self.vqvae.quantizer.codebook.float()

    def _codes(self, batch: dict[str, Any]) -> torch.Tensor:
        codes = self.vqvae.encode(batch["image"].float() * 2 - 1)
        if codes.shape[-1] != self.side:
            raise ValueError(
                f"model.init_args.image_size={self.hparams.image_size} gives {self.side}x{self.side} "
                f"code maps, the data gives {tuple(codes.shape[-2:])}: set it to the data's image_size"
            )
        return codes

    def _step(self, batch: dict[str, Any], stage: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(loss, the topic model's outputs), the loss terms logged."""
        codes = self._codes(batch)
        out = self.topic_model(codes)
        reconstruction = bag_nll(code_bag(codes, self.prior.num_codes), out["distribution"]).mean()
        kl = out["kl"].mean()
        logits = self.prior(codes, self.topic_embedding(out["theta"].detach()))
        prior = F.cross_entropy(logits.float(), codes)
        loss = prior + reconstruction + kl
        out["codes"] = codes
        self.log_dict(
            {
                f"{stage}/loss": loss,
                f"{stage}/prior_ce": prior,
                f"{stage}/reconstruction": reconstruction,
                f"{stage}/kl": kl,
            },
            prog_bar=stage != "train",
            batch_size=len(codes),
        )
        return loss, out

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")[0]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "val")

    def document_topics(self, batch: dict[str, Any]) -> torch.Tensor:
        with torch.no_grad():
            mean, _ = self.topic_model.inference(self._codes(batch))
        return F.softmax(mean.float(), dim=1)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        _, out = self._step(batch, "test")
        self.test_theta.update(
            F.softmax(out["mean"].float(), dim=1)
        )  # the posterior mean, as document_topics
        self.test_labels.update(batch["label"].float())
        bags = code_bag(out["codes"], self.prior.num_codes).float()
        self.test_bags.update(bags / bags.sum(1, keepdim=True))  # the baseline's features: code shares
        if batch_idx == 0:
            self._references = batch["image"][: self.hparams.samples_per_topic].detach()

    def on_test_epoch_end(self) -> None:
        """Topic purity / NMI against the labels; sample grids per topic and from reference images."""
        from sklearn.metrics import normalized_mutual_info_score

        theta, labels = self.test_theta.compute(), self.test_labels.compute().long()
        bags = self.test_bags.compute()
        for metric in (self.test_theta, self.test_labels, self.test_bags):
            metric.reset()
        topics, classes = theta.argmax(1).cpu().numpy(), labels.cpu().numpy()
        counts = torch.bincount(labels)
        # the baseline over the same code maps: KMeans (K = topics) on each image's code shares
        kmeans = clustering_scores(bags.cpu().numpy(), classes, self.hparams.num_topics, seed=0)
        row = {
            "purity": purity(classes, topics),
            "nmi": float(normalized_mutual_info_score(classes, topics)),
            "chance_purity": float(counts.max() / counts.sum()),  # all in one cluster
            "code_kmeans_purity": kmeans["purity"],
            "code_kmeans_nmi": kmeans["nmi"],
        }
        self.log_dict({f"test/{k}": v for k, v in row.items()}, prog_bar=True)
        if not self.trainer.is_global_zero:
            return
        out = self.run_dir()
        out.mkdir(parents=True, exist_ok=True)
        grids = {"topic_samples": self.topic_samples(), "reference_samples": self.reference_samples()}
        for name, grid in grids.items():
            save_image(grid, out / f"{name}.png")
            log_image(self.trainer, f"test/{name}", grid)
        title = (
            "TVQ-VAE (images): topics (argmax θ) against class labels; code_kmeans: KMeans on the code shares"
        )
        rows = [{"group": f"K={self.hparams.num_topics}", **row}]
        self.write_table(rows, list(row), title, digits=4, note="; topic_samples.png, reference_samples.png")

    def _samples(self, theta: torch.Tensor) -> torch.Tensor:
        codes = self.prior.sample(self.topic_embedding(theta), (self.side, self.side))
        return ((self.vqvae.decode(codes).float() + 1) / 2).clamp(0, 1)

    def topic_samples(self) -> torch.Tensor:
        """A grid with one row per topic: samples from a one-hot θ."""
        k, n = self.hparams.num_topics, self.hparams.samples_per_topic
        theta = torch.eye(k, device=self.device).repeat_interleave(n, 0)
        return make_grid(self._samples(theta), nrow=n, padding=1)

    def reference_samples(self) -> torch.Tensor:
        """Each row: a reference test image, then samples from its inferred θ."""
        references = getattr(self, "_references", None)
        if references is None:
            return torch.zeros(3, 8, 8)
        theta = self.document_topics({"image": references})
        n = 4
        samples = self._samples(theta.repeat_interleave(n, 0)).reshape(
            len(references), n, *references.shape[1:]
        )
        rows = torch.cat([references.float().unsqueeze(1), samples], dim=1).flatten(0, 1)
        return make_grid(rows, nrow=n + 1, padding=1)

    def configure_optimizers(self):
        parameters = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(parameters, lr=self.hparams.lr)
        steps = self.trainer.estimated_stepping_batches
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, int(steps))),
                "interval": "step",
            },
        }
