"""A generator prior for text-guided generation: the variance-aware generator trained once on photos of other
things, then fine-tuned on each category's few normals (``model.init_args.prior_path`` of the generation).

Trained from scratch on one or four images, the generator has no notion of what else a normal image could look
like: its samples stayed near-copies of a blurred reconstruction. The paper's generator starts from a pretrained
VQGAN; offline there is none, so this learns a small one from the MVTec stand-in's ``photos`` folder (scikit-image
photos no category is made from, so the prior sees no category's test images).
"""

from __future__ import annotations

from lightning_modules.tgi_ad.module import TextGuidedGenerationModule


class GeneratorPriorModule(TextGuidedGenerationModule):
    """The generation module's generator and losses alone: no prompts, no CLIP, no selection rounds, nothing
    written but the checkpoint (and, at test, the reconstruction table). Its checkpoint or run folder is the
    generation's ``prior_path``; the generator sizes must match there."""

    def on_train_epoch_end(self) -> None:
        """No generation rounds: the prior only learns to encode and rebuild."""

    def on_fit_end(self) -> None:
        """Nothing to write: the checkpoint is the output."""

    def on_fit_start(self) -> None:
        """No prompts: the data need not expand keywords."""
