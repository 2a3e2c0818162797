"""Style Latent Flows as three LightningModules.

* :class:`FaceAutoencoderModule` — the stand-in style encoder, used when no pSp weights are available: a face
  autoencoder trained on real training frames (``configs/face_autoencoder.yaml``).
* :class:`StyleGRUModule` — stage 1 (``configs/stylegru.yaml``): StyleGRU + head on latent differences, trained
  on triplets with BCE on all three clips plus the margin ranking loss ‖E_a − E_p‖ + m < ‖E_a − E_n‖; evaluated
  at video level (σ of the mean clip logit).
* :class:`StyleFlowModule` — stage 2 (``configs/styleflow.yaml``): content tokens of a 3D CNN, fused with the
  frozen (or 0.1x-lr) stage-1 E_style by the style attention module, then the temporal transformer; BCE.
  ``use_style: false`` is the content-only detector the demo compares with.

Validation and test come from :class:`~lightning_modules.routines.binary_detection.BinaryDetectionRoutine`: clips are
aggregated per video (``video_index``) and every manipulation is scored against the original videos.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from datamodules.batch import batch_size_of
from lightning_modules.outputs.checkpoints import read_run_checkpoint
from lightning_modules.routines.base import EvaluationRoutine
from lightning_modules.routines.binary_detection import BinaryDetectionRoutine
from lightning_modules.styleflow.latents import extract_for, latent_width
from lightning_modules.styleflow.networks import (
    ContentBranch,
    StyleAttention,
    StyleGRU,
    StyleHead,
    TemporalTransformer,
)
from lightning_modules.styleflow.style_encoders import FaceAutoencoder

# why the video detectors are not exported: one graph would not compute what predict writes
VIDEO_EXPORT_REFUSAL = (
    "its input is style latents that a separate face encoder computes from the frames (not in the graph), and "
    "predict scores a video by the mean logit of its clips: no one graph of it gives predictions.csv's scores"
)


class FaceAutoencoderModule(EvaluationRoutine):
    """Face autoencoder on video frames (MSE), whose encoder gives the stand-in style latents.

    Args:
        image_size: Frame side it works at (linked from the data).
        width: Channels of the first convolution (doubled per stage).
        num_layers, layer_dim: Latent shape (a small W+: ``num_layers`` codes of ``layer_dim``).
        frames_per_clip: Frames drawn from each training clip per step (all frames at validation and test).
        lr: Adam learning rate.
    """

    SMOKE_ARGUMENTS: dict[str, Any] = {}

    def __init__(
        self,
        image_size: int = 64,
        width: int = 32,
        num_layers: int = 4,
        layer_dim: int = 32,
        frames_per_clip: int = 8,
        lr: float = 1e-3,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.autoencoder = FaceAutoencoder(image_size, width, num_layers, layer_dim)

    def _frames(self, batch: dict[str, Any], sample: bool) -> torch.Tensor:
        frames = batch["frames"]
        if sample and frames.shape[1] > self.hparams.frames_per_clip:
            frames = frames[
                :, torch.randperm(frames.shape[1], device=frames.device)[: self.hparams.frames_per_clip]
            ]
        return rearrange(frames, "b t c h w -> (b t) c h w").float()

    def _step(self, batch: dict[str, Any], stage: str) -> torch.Tensor | None:
        if batch_size_of(batch) == 0:
            return None
        frames = self._frames(batch, stage == "train")
        _, rebuilt = self.autoencoder(frames)
        target = (
            F.interpolate(frames, size=rebuilt.shape[-2:], mode="area")
            if frames.shape[-1] != rebuilt.shape[-1]
            else frames
        )
        loss = F.mse_loss(rebuilt.float(), target)
        self.log(f"{stage}/mse", loss, prog_bar=True, batch_size=len(frames), sync_dist=stage != "train")
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "test")

    def on_test_epoch_end(self) -> None:
        mse = self.trainer.callback_metrics.get("test/mse")
        if self.trainer.is_global_zero and mse is not None:
            title = "Face autoencoder (stand-in style encoder): reconstruction MSE"
            self.write_table([{"group": "test frames", "mse": float(mse)}], ["mse"], title, digits=5)

    def pictures(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Frames of the first clips (top) and their reconstructions (bottom)."""
        with torch.no_grad():
            frames = self._frames(batch, sample=False)[:8]
            rebuilt = self.autoencoder(frames)[1].float()
        if rebuilt.shape[-1] != frames.shape[-1]:
            rebuilt = F.interpolate(rebuilt, size=frames.shape[-2:], mode="nearest")
        return {"reconstruction": torch.cat([frames, rebuilt.clamp(0, 1)])}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


class StyleGRUModule(BinaryDetectionRoutine):
    """Stage 1: StyleGRU + residual head, contrastive (triplet) training.

    Args:
        style_encoder: A face-autoencoder run folder / checkpoint or a pSp checkpoint: the latents the data lacks
            are extracted with it in ``prepare_data`` (and its width is the GRU's input). Null: the latents must be
            on disk already (``scripts/extract_latents.py``).
        latent_dim: Width of one frame's latent (linked from the data: 9216 for pSp's 18 x 512); the style
            encoder's width when one is set.
        clip_len: Frames per clip (linked from the data); the GRU reads ``clip_len - 1`` differences.
        hidden: GRU width (4096 in the paper; E_style is 4 x hidden).
        layers: GRU layers (2, bidirectional).
        gru_dropout: Dropout between the GRU layers (0.1).
        latent_dropout: LatentDropout probability (0.2).
        head_hidden: Hidden width of the head's residual feed-forward (4096).
        margin: Margin of the ranking loss (1).
        initial_state: The GRU's learnt initial state starts ``normal`` (N(0, 1), the official code) or ``zeros``.
        lr: Adam learning rate (5e-4, the official default).
        threshold: Fake-probability threshold of ACC.
    """

    SMOKE_ARGUMENTS = {"hidden": 16, "head_hidden": 16}

    export_input_keys = ("deltas",)  # the latents' frame-to-frame differences
    export_refusal = VIDEO_EXPORT_REFUSAL

    def __init__(
        self,
        style_encoder: str | None = None,
        latent_dim: int | None = None,
        clip_len: int = 32,
        hidden: int = 4096,
        layers: int = 2,
        gru_dropout: float = 0.1,
        latent_dropout: float = 0.2,
        head_hidden: int = 4096,
        margin: float = 1.0,
        initial_state: Literal["normal", "zeros"] = "normal",
        lr: float = 5e-4,
        threshold: float = 0.5,
    ) -> None:
        super().__init__(lr=lr, threshold=threshold)
        latent_dim = latent_width(style_encoder, latent_dim)
        self.save_hyperparameters()
        self.hparams.latent_dim = latent_dim  # what the GRU was built for (a stage-2 run reads it)
        self.gru = StyleGRU(
            latent_dim, clip_len - 1, hidden, layers, gru_dropout, latent_dropout, initial_state
        )
        self.head = StyleHead(self.gru.output_dim, head_hidden)
        self.ranking = nn.MarginRankingLoss(margin=margin)

    def prepare_data(self) -> None:
        extract_for(self, self.hparams.style_encoder)

    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.head(self.gru(batch["deltas"]))

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        if "anchor" not in batch:  # plain clips: BCE only
            return super().training_step(batch, batch_idx)
        # one call per member, as the official code: each gets its own latent-dropout mask and batch statistics
        anchor, positive, negative = (self.gru(batch[k]) for k in ("anchor", "positive", "negative"))
        logits = torch.cat([self.head(anchor), self.head(positive), self.head(negative)]).float()
        label = batch["label"].float()
        targets = torch.cat([label, label, 1 - label])
        bce = F.binary_cross_entropy_with_logits(logits, targets)
        far, near = (anchor - negative).norm(dim=1), (anchor - positive).norm(dim=1)
        margin = self.ranking(far.float(), near.float(), torch.ones_like(far, dtype=torch.float32))
        loss = bce + margin
        size = len(label)
        acc = ((logits.detach() > 0).float() == targets).float().mean()
        self.log_dict({"train/loss": loss, "train/acc": acc}, prog_bar=True, batch_size=size)
        self.log_dict(
            {
                "train/bce": bce,
                "train/margin": margin,
                "train/triplet_satisfied": (far > near + self.hparams.margin).float().mean(),
            },
            batch_size=size,
        )
        return loss


def load_stylegru(path: str | Path) -> StyleGRU:
    """The StyleGRU of a :class:`StyleGRUModule` checkpoint or run folder."""
    h, state = read_run_checkpoint(
        path, "stylegru_path", "gru.", "stylegru.yaml", "StyleGRUModule", "latent_dim"
    )
    gru = StyleGRU(
        h["latent_dim"], h["clip_len"] - 1, h["hidden"], h["layers"], h["gru_dropout"], h["latent_dropout"]
    )
    gru.load_state_dict(state)
    return gru


class StyleFlowModule(BinaryDetectionRoutine):
    """Stage 2: content branch + style attention module + temporal transformer encoder, BCE on one logit.

    Args:
        stylegru_path: A stage-1 StyleGRUModule checkpoint or run folder (needed when ``use_style``).
        style_encoder: The encoder the latents the data lacks are extracted with in ``prepare_data`` (the
            stage-1 run's own; null: the latents must be on disk already).
        use_style: False: the content-only detector (no StyleGRU, no attention module).
        content_backbone: ``r3d_18``, ``mc3_18``, ``r2plus1d_18`` (torchvision) or ``small3d`` (CPU demos).
        content_weights: Local state dict of the torchvision video network (e.g. Kinetics-400), or null.
        content_width: Width of ``small3d``.
        dim: Token width of the attention module and the transformer (1024).
        style_tokens: E_style is split into this many tokens (16: 16384 = 16 x 1024).
        depth, heads, mlp_dim, dropout: Temporal transformer (6, 16, 2048, 0.1).
        max_tokens: Content tokens the positional embedding covers.
        style_lr_scale: 0 freezes StyleGRU (kept in eval mode); e.g. 0.1 fine-tunes it at 0.1 x lr.
        lr, weight_decay: AdamW (1e-4, 1e-4) with a cosine schedule over the run.
        threshold: Fake-probability threshold of ACC.
    """

    weights_keys = ("content_backbone", None, "content_weights")  # the paper starts from FTCN's I3D weights
    SMOKE_ARGUMENTS = {"dim": 32, "depth": 1, "heads": 2, "mlp_dim": 32, "style_tokens": 4}

    export_input_keys = ("frames", "deltas")
    export_refusal = VIDEO_EXPORT_REFUSAL

    def __init__(
        self,
        stylegru_path: str | None = None,
        style_encoder: str | None = None,
        use_style: bool = True,
        content_backbone: str = "r3d_18",
        content_weights: str | None = None,
        content_width: int = 16,
        dim: int = 1024,
        style_tokens: int = 16,
        depth: int = 6,
        heads: int = 16,
        mlp_dim: int = 2048,
        dropout: float = 0.1,
        max_tokens: int = 64,
        style_lr_scale: float = 0.0,
        lr: float = 1e-4,
        weight_decay: float = 1e-4,
        threshold: float = 0.5,
    ) -> None:
        super().__init__(lr=lr, threshold=threshold)
        self.save_hyperparameters()
        self.content = ContentBranch(content_backbone, content_weights, content_width)
        self.content_proj = nn.Linear(self.content.out_channels, dim)
        self.style_gru: StyleGRU | None = None
        if use_style:
            if not stylegru_path:
                raise ValueError(
                    "model.init_args.stylegru_path is needed with use_style: true (run configs/stylegru.yaml)"
                )
            self.style_gru = load_stylegru(stylegru_path)
            if self.style_gru.output_dim % style_tokens:
                raise ValueError(
                    f"E_style has {self.style_gru.output_dim} values, not divisible into {style_tokens} tokens"
                )
            self.style_gru.requires_grad_(style_lr_scale > 0)
            self.style_proj = nn.Linear(self.style_gru.output_dim // style_tokens, dim)
            self.attention = StyleAttention(dim)
        self.temporal = TemporalTransformer(dim, max_tokens, depth, heads, mlp_dim, dropout)

    def prepare_data(self) -> None:
        extract_for(self, self.hparams.style_encoder)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.style_gru is not None and self.hparams.style_lr_scale == 0:
            self.style_gru.eval()  # frozen: no dropout, batch norm statistics of stage 1
        return self

    def tokens(self, batch: dict[str, Any]) -> torch.Tensor:
        """Content tokens after the style attention module, (B, T', dim)."""
        tokens = self.content_proj(self.content(batch["frames"]))
        if self.style_gru is None:
            return tokens
        with torch.set_grad_enabled(self.hparams.style_lr_scale > 0 and torch.is_grad_enabled()):
            style = self.style_gru(batch["deltas"])
        style = self.style_proj(rearrange(style, "b (n d) -> b n d", n=self.hparams.style_tokens))
        return self.attention(tokens, style)

    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.temporal(self.tokens(batch))

    def pictures(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The first eight frames of the first clip and of the first clip of the other class."""
        frames, labels = batch["frames"], batch["label"]
        rows = [frames[0, :8]]
        other = (labels != labels[0]).nonzero()
        if len(other):
            rows.append(frames[int(other[0]), :8])
        return {"clips": torch.cat(rows).float()}

    def configure_optimizers(self):
        style = [
            p for p in (self.style_gru.parameters() if self.style_gru is not None else []) if p.requires_grad
        ]
        style_ids = {id(p) for p in style}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in style_ids]
        groups = [{"params": rest, "lr": self.hparams.lr}]
        if style:
            groups.append({"params": style, "lr": self.hparams.lr * self.hparams.style_lr_scale})
        optimizer = torch.optim.AdamW(groups, weight_decay=self.hparams.weight_decay)
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
