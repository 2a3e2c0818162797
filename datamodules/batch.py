"""The batch contract: what a batch may hold, in code, and the helpers every module needs to read one.

Every DataModule here yields dict batches whose keys come from :class:`Batch`, so callbacks (mixing, calibration,
pictures, predictions) and shared routines can read any method's batch. A key is present only where the data has
it: an image classifier's batch has ``image``, ``label``, ``group``, ``path``; an RGB-D capture adds ``depth``; a
video clip has ``frames`` and / or ``deltas`` instead of ``image``. Modules in ``lightning_modules/`` may import
this file and nothing else of ``datamodules/``: a model knows the contract, not the layouts.

Example:
    >>> import torch
    >>> batch = collate_skipping_bad([{"image": torch.zeros(3, 4, 4), "label": 1}, None])
    >>> batch_size_of(batch), batch["skipped"]
    (1, 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

import torch
from torch.utils.data import default_collate


class Batch(TypedDict, total=False):
    """Keys and shapes of a batch (B samples); every key is optional, see the module docstring.

    Images are float in [0, 1]; labels are long, -1 where unknown (a user's unlabelled folder).
    """

    image: torch.Tensor  # (B, C, H, W)
    label: torch.Tensor  # (B,) class index; detectors: 0 real / genuine / normal, 1 fake / spoof / anomalous
    # (B, K) soft labels, written by a mixing callback; used instead of ``label`` when present
    target: torch.Tensor
    mask: torch.Tensor  # (B, 1, H, W) ground-truth defect mask in {0, 1} (anomaly detection)
    depth: torch.Tensor  # (B, 1, H, W) depth map in [0, 1] (RGB-D anti-spoofing)
    frames: torch.Tensor  # (B, T, C, H, W) a video clip's frames
    deltas: torch.Tensor  # (B, T - 1, D) differences of consecutive per-frame style latents
    # (B, T - 1, D) StyleGRU triplets: anchor, a same-class positive, an other-class negative
    anchor: torch.Tensor
    positive: torch.Tensor
    negative: torch.Tensor
    logits: torch.Tensor  # (B, C) logits computed elsewhere (calibration without a network)
    bow: torch.Tensor  # (B, V) a document's bag of words (topic models)
    index: torch.Tensor  # (B,) the document's index in the corpus
    group: list[str]  # what result tables are split by: generator, category, display, manipulation
    path: list[str]  # where each sample came from (a file, or ``<folder>#<first frame>`` for a clip)
    video_index: torch.Tensor  # (B,) the clip's video, for video-level scores
    sample_index: torch.Tensor  # (B,) the sample's index in its dataset (DDP padding repeats some)
    skipped: (
        int  # files the collate function dropped as unreadable (removed before the batch reaches a model)
    )


# A LightningModule that fits state from the training images (PatchCore's memory bank, EfficientAD's statistics,
# CFlow's likelihood reference) sets this attribute true: the training loader then keeps its last partial batch,
# so every training image is seen once per epoch instead of up to ``batch_size - 1`` of them left out.
USES_EVERY_TRAINING_IMAGE = "uses_every_training_image"

# the keys whose first dimension is the batch size, in the order they are looked for
SIZED_KEYS = ("image", "label", "frames", "deltas", "logits", "bow")


def batch_size_of(batch: dict[str, Any]) -> int:
    """Number of samples in a dict batch (0 when every file in it was skipped)."""
    for key in SIZED_KEYS:
        if key in batch and hasattr(batch[key], "shape"):
            return int(batch[key].shape[0])
    return 0


def collate_skipping_bad(samples: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """``default_collate`` over the decodable samples; ``skipped`` holds how many were dropped."""
    good = [sample for sample in samples if sample is not None]
    batch: dict[str, Any] = default_collate(good) if good else {}
    batch["skipped"] = len(samples) - len(good)
    return batch


def to_device(batch: dict[str, Any], device: torch.device | str) -> dict[str, Any]:
    """The batch with every tensor moved to ``device`` (lists and numbers as they are)."""
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def first_samples(batch: dict[str, Any], count: int) -> dict[str, Any]:
    """The batch's first ``count`` samples (every tensor and list cut; numbers as they are)."""
    return {k: v[:count] if isinstance(v, (torch.Tensor, list)) else v for k, v in batch.items()}
