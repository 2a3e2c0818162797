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
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict, runtime_checkable

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


@dataclass(frozen=True)
class SplitInfo:
    """What one split of the data knows beyond its batches: the one thing a routine asks its datamodule
    (``BaseDataModule.split_info(split)``, read through ``EvaluationRoutine.split_info``). Declared here, so a
    layout that stops answering fails a test instead of silently dropping a column of a results table. Each
    layout fills what it knows; everything else keeps these defaults.

    ``groups``: what the split's tables are split by (generators, defect types, displays, classes), in a fixed
    order. ``real_group``: the group real images are scored against (FF++'s originals). ``seen``: the groups
    training saw (None: the split does not say), so the table gives seen and unseen means. ``unseen``: test
    displays no training spoof came from. ``controls``: test groups that are no generator (blurred reals).
    ``class_names``: the classes' names, in label order. ``title``: what a table is about (``mvtec_ad/brick,
    full-shot``). ``category``: the one object category a run is about, where there is one. ``image_size``: the
    side images are fed at. ``batch_size``: samples per batch and device. ``root``: the folder the split's files
    sit under (pictures are named relative to it). ``components``: (what the run read, whether it is a stand-in),
    for a table's first line. ``per_clip`` and ``videos``: for videos, whether predict writes a row per clip, else
    each video's (folder, clip count), in video order.
    """

    groups: tuple[str, ...] = ()
    real_group: str | None = None
    seen: tuple[str, ...] | None = None
    unseen: tuple[str, ...] = ()
    controls: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    title: str = ""
    category: str | None = None
    image_size: int | None = None
    batch_size: int | None = None
    root: str | None = None
    components: tuple[tuple[str, bool], ...] = ()
    per_clip: bool = True
    videos: tuple[tuple[str, int], ...] = ()


@runtime_checkable
class DescribesSplits(Protocol):
    """What every datamodule a routine reads must answer (``BaseDataModule`` does)."""

    def split_info(self, split: str) -> SplitInfo: ...


# Method-specific asks: what a few routines need from their data beyond SplitInfo, each checked by ``data_as``
# (naming what is missing) before it is used.
@runtime_checkable
class TrainingImages(Protocol):
    """The training split's loader (EfficientAD's statistics, ViT-AAL's k-means control)."""

    def train_dataloader(self) -> Any: ...


@runtime_checkable
class NormalImages(Protocol):
    """The real normal training images, once each, as test images are shown (anomaly decision thresholds)."""

    def normal_images_dataloader(self) -> Any: ...


@runtime_checkable
class CalibrationSplit(Protocol):
    """A held-out split a post-hoc calibrator is fitted on."""

    def calibration_dataloader(self) -> Any: ...


@runtime_checkable
class KeywordExpansion(Protocol):
    """Text knowledge about a category's name (text-guided generation's prompts)."""

    def expand_keyword(self, keyword: str, depth: int = 1) -> dict[str, list[str]]: ...


@runtime_checkable
class TopicCorpus(Protocol):
    """A text corpus as the topic models read it: dictionary, texts, labels, splits, token vectors."""

    dictionary: Any
    texts: list
    lemmatized_texts: list
    label_names: list
    split_indices: dict

    def id2word(self) -> list[str]: ...

    def token_embeddings(self) -> Any: ...


@runtime_checkable
class VideoLatents(Protocol):
    """Video folders whose style latents an encoder can write (Style Latent Flows' extraction)."""

    inputs: Any
    predict_dir: Any
    batch_size: int

    def video_folders(self, splits: tuple[str, ...] | None = None) -> list: ...

    def latents_written_by(self, folder: Any) -> Any: ...

    def frame_batches(self, folder: Any, size: int, batch_size: int) -> Any: ...

    def write_latents(self, folder: Any, latents: Any, info: dict) -> None: ...


@runtime_checkable
class Datasets(Protocol):
    """The datasets of the set-up splits, by name (a routine draws pictures from the test split's)."""

    datasets: dict


def protocol_members(protocol: type) -> list[str]:
    """The attributes and methods a ``Protocol`` asks for."""
    names = list(getattr(protocol, "__annotations__", {}))
    names += [n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")]
    return list(dict.fromkeys(names))


def data_as(datamodule: Any, protocol: type, who: str) -> Any:
    """``datamodule`` when it answers ``protocol``, else one ``TypeError`` naming who asks, the protocol and what
    is missing (as ``PostHocCalibration`` names what it needs)."""
    if datamodule is not None and isinstance(datamodule, protocol):
        return datamodule
    missing = [n for n in protocol_members(protocol) if not hasattr(datamodule, n)]
    kind = type(datamodule).__name__ if datamodule is not None else "no datamodule"
    raise TypeError(
        f"{who} needs a datamodule with {', '.join(missing)} ({protocol.__name__}); {kind} has none"
    )


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
