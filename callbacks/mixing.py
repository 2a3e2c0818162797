"""K-image mixing (DMixup / DCutMix, and Mixup / CutMix as K = 2) as a callback for any module.

Needs batches with ``image`` and ``label`` and a module with ``num_classes`` and a loss that uses
``batch["target"]`` (soft labels) when present, as :class:`ImageClassifierModule` and the binary detectors do.
At predict time, with ``uncertainty_mixes > 0``, it also needs ``logits(batch)`` and adds uncertainty columns to
``predictions.csv``.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback

from lightning_modules.components.mixing import MixMode, Placement, k_image_mix, one_hot, smooth_targets


class KImageMixing(Callback):
    """Mix each training batch with in-batch partners and write soft targets to ``batch["target"]``.

    Args:
        k: Images per mix (K); 2 gives Mixup / CutMix, 1 disables mixing.
        alpha: Dirichlet concentration (Beta(alpha, alpha) for K = 2).
        mode: ``cutmix`` (nested boxes, labels = visible pixel shares) or ``mixup`` (weighted sums).
        prob: Probability of mixing a batch (the official code's ``beta``; not a Beta parameter).
        label_smoothing: Smoothing applied to the (mixed or one-hot) targets.
        placement: ``inside`` (DCutMix's nested boxes) or ``clipped`` (CutMix / timm's box, K = 2 only).
        uncertainty_mixes: At predict, mix every sample as the anchor this many times (0: off) and write
            ``mix_uncertainty`` (mean KL between the mix's expected label shares and the prediction, with the
            unmixed predictions as partners' labels), ``mix_confidence_mean`` and ``mix_confidence_var`` (the
            anchor class's probability over the mixes, divided by the anchor's share).
        uncertainty_k: K of the predict-time mixes (default: ``k``).
    """

    def __init__(
        self,
        k: int = 5,
        alpha: float = 1.0,
        mode: MixMode = "cutmix",
        prob: float = 1.0,
        label_smoothing: float = 0.0,
        placement: Placement = "inside",
        uncertainty_mixes: int = 0,
        uncertainty_k: int | None = None,
    ) -> None:
        if k < 1 or alpha <= 0 or not 0 <= prob <= 1:
            raise ValueError(
                f"KImageMixing needs k >= 1, alpha > 0 and prob in [0, 1]; got k={k}, alpha={alpha}, prob={prob}"
            )
        if mode not in ("mixup", "cutmix"):
            raise ValueError(f"KImageMixing mode must be mixup or cutmix, got {mode!r}")
        if placement == "clipped" and k != 2:
            raise ValueError("KImageMixing placement 'clipped' is CutMix's K = 2 box; use 'inside' for K > 2")
        self.k, self.alpha, self.mode, self.prob = k, alpha, mode, prob
        self.label_smoothing, self.placement = label_smoothing, placement
        self.uncertainty_mixes = uncertainty_mixes
        self.uncertainty_k = uncertainty_k or k

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not isinstance(getattr(pl_module, "num_classes", None), int):
            raise TypeError(
                f"KImageMixing needs {type(pl_module).__name__}.num_classes to build soft targets"
            )
        if stage == "predict" and self.uncertainty_mixes and not callable(getattr(pl_module, "logits", None)):
            raise TypeError(f"KImageMixing's uncertainty needs {type(pl_module).__name__}.logits(batch)")

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if not isinstance(batch, dict) or "image" not in batch or "label" not in batch:
            raise TypeError("KImageMixing needs dict batches with 'image' and 'label'")
        if not len(batch["label"]):
            return
        classes = pl_module.num_classes
        if self.k > 1 and torch.rand(1).item() < self.prob:
            batch["image"], targets = k_image_mix(
                batch["image"],
                batch["label"],
                classes,
                self.k,
                self.alpha,
                self.mode,
                placement=self.placement,
            )
        else:
            targets = one_hot(batch["label"], classes).to(batch["image"].device)
        batch["target"] = smooth_targets(targets, self.label_smoothing)

    # --------------------------------------------------------------------------------- uncertainty
    @torch.no_grad()
    def on_predict_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not self.uncertainty_mixes or not isinstance(outputs, dict) or not len(batch["image"]):
            return
        scores = mix_uncertainty(
            pl_module,
            batch,
            self.uncertainty_mixes,
            self.uncertainty_k,
            self.alpha,
            self.mode,
            self.placement,
        )
        outputs.update(scores)


def class_probabilities(pl_module: L.LightningModule, batch: dict[str, Any]) -> torch.Tensor:
    """(B, C) probabilities from ``logits(batch)``; a binary detector's single logit becomes [real, fake]."""
    logits = pl_module.logits(batch).float()
    if logits.ndim == 1:
        logits = torch.stack([torch.zeros_like(logits), logits], dim=1)
    return logits.softmax(dim=1)


def mix_uncertainty(
    pl_module: L.LightningModule,
    batch: dict[str, Any],
    mixes: int,
    k: int,
    alpha: float,
    mode: MixMode,
    placement: Placement = "inside",
) -> dict[str, torch.Tensor]:
    """Per sample: how far the predictions on M K-mixes anchored at it stray from the mixes' label shares.

    Partners' labels are the model's own unmixed predictions (no labels exist at predict time). A sample the
    model understands keeps its share of the prediction when mixed; an ambiguous one does not. Returns
    ``mix_uncertainty`` (mean KL(shares || prediction)), ``mix_confidence_mean`` and ``mix_confidence_var``.
    """
    images = batch["image"]
    probs = class_probabilities(pl_module, batch)
    predicted = probs.argmax(dim=1)
    classes = probs.shape[1]
    kl, confidence = [], []
    for _ in range(mixes):
        mixed, shares, partners, weights = k_image_mix(
            images, predicted, classes, k, alpha, mode, placement=placement, return_parts=True
        )
        mixed_probs = class_probabilities(pl_module, {**batch, "image": mixed})
        kl.append(F.kl_div(mixed_probs.clamp_min(1e-12).log(), shares, reduction="none").sum(dim=1))
        anchor_share = weights[:, 0].clamp_min(1e-6)
        confidence.append(mixed_probs.gather(1, predicted[:, None]).squeeze(1) / anchor_share)
    kl_all, confidence_all = torch.stack(kl), torch.stack(confidence)
    return {
        "mix_uncertainty": kl_all.mean(dim=0),
        "mix_confidence_mean": confidence_all.mean(dim=0),
        "mix_confidence_var": confidence_all.var(dim=0, unbiased=False),
    }


__all__ = ["KImageMixing", "mix_uncertainty"]
