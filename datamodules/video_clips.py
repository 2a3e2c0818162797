"""Face videos cut into clips: the video record, the clip policy, the clip dataset and StyleGRU's triplet sampler.

A clip is a window of ``clip_len`` consecutive frames of one video (non-overlapping); a sample carries its frames
and / or the frame-to-frame differences of its per-frame style latents (``latents.npy`` beside the frames).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from datamodules.base import DatasetNotFoundError, skip_or_raise
from datamodules.image_io import BadImageError, list_images, read_rgb

LATENTS, LATENTS_INFO = "latents.npy", "latents.json"


@dataclass(frozen=True)
class VideoRecord:
    """One video: its frame folder, label (0 real, 1 fake), group and frame files in order."""

    folder: Path
    label: int
    group: str
    frames: tuple[Path, ...]


def clip_starts(frames: int, clip_len: int, min_frames: int, max_clips: int | None = None) -> list[int]:
    """First frames of a video's non-overlapping clips; [] when it is shorter than ``min_frames``."""
    if frames < min_frames:
        return []
    starts = list(range(0, max(1, frames - clip_len + 1), clip_len))
    return starts[:max_clips] if max_clips else starts


def clip_indices(start: int, frames: int, clip_len: int) -> np.ndarray:
    """Frame indices of the clip at ``start``: consecutive, reflect-padded past the video's end."""
    indices = np.arange(start, min(frames, start + clip_len))
    while len(indices) < clip_len:
        indices = np.pad(indices, (0, min(clip_len - len(indices), len(indices) - 1)), mode="reflect")
    return indices


def read_video_folder(folder: Path, label: int, group: str) -> VideoRecord:
    return VideoRecord(folder, label, group, tuple(list_images(folder, recursive=False)))


class VideoClipDataset(Dataset):
    """Clips of :class:`VideoRecord` videos, as dict samples; an int index gives one clip, a tuple a triplet."""

    def __init__(
        self,
        videos: list[VideoRecord],
        clips: list[tuple[int, int]],
        inputs: list[str],
        clip_len: int,
        image_size: int,
        flip: bool,
        bad_files: str,
    ) -> None:
        self.videos, self.clips, self.inputs = videos, clips, inputs
        self.clip_len, self.image_size, self.flip, self.bad_files = clip_len, image_size, flip, bad_files

    def __len__(self) -> int:
        return len(self.clips)

    def labels(self) -> np.ndarray:
        return np.array([self.videos[v].label for v, _ in self.clips])

    def deltas(self, index: int) -> torch.Tensor:
        """The clip's latent differences, (clip_len - 1, D) float32."""
        video_index, start = self.clips[index]
        video = self.videos[video_index]
        path = video.folder / LATENTS
        latents = np.load(path, mmap_mode="r")
        if latents.ndim != 2 or len(latents) != len(video.frames):
            raise ValueError(f"{path}: expected ({len(video.frames)} frames, D) latents, got {latents.shape}")
        steps = np.diff(
            np.asarray(latents[clip_indices(start, len(video.frames), self.clip_len)], np.float32), axis=0
        )
        assert len(steps) == self.clip_len - 1
        return torch.from_numpy(steps)

    def frames(self, index: int) -> torch.Tensor | None:
        """The clip's frames, (T, 3, S, S) in [0, 1]; None for an unreadable frame under ``bad_files: skip``."""
        video_index, start = self.clips[index]
        video = self.videos[video_index]
        images = []
        for i in clip_indices(start, len(video.frames), self.clip_len):
            try:
                image = read_rgb(video.frames[i])
            except BadImageError as error:
                skip_or_raise(error, self.bad_files, "frame")
                return None
            if image.shape[:2] != (self.image_size, self.image_size):
                image = cv2.resize(image, (self.image_size, self.image_size), interpolation=cv2.INTER_AREA)
            images.append(image)
        clip = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255)
        return clip.flip(-1) if self.flip and torch.rand(()) < 0.5 else clip

    def __getitem__(self, index: int | tuple[int, int, int]) -> dict[str, Any] | None:
        if isinstance(index, tuple):  # a StyleGRU triplet: anchor, positive, negative
            anchor, positive, negative = (self.deltas(i) for i in index)
            label = self.videos[self.clips[index[0]][0]].label
            return {"anchor": anchor, "positive": positive, "negative": negative, "label": label}
        video_index, start = self.clips[index]
        video = self.videos[video_index]
        sample: dict[str, Any] = {
            "label": video.label,
            "group": video.group,
            "video_index": video_index,
            "sample_index": index,
            "path": f"{video.folder}#{start}",
        }
        if "frames" in self.inputs:
            frames = self.frames(index)
            if frames is None:
                return None
            sample["frames"] = frames
        if "latents" in self.inputs:
            sample["deltas"] = self.deltas(index)
        return sample


class TripletSampler(Sampler):
    """``count`` (anchor, positive, negative) clip triplets per epoch, drawn again each epoch from ``(seed, epoch)``
    (Lightning calls ``set_epoch``): anchor class 50/50, positive a same-class clip of another video when one
    exists, negative a clip of the other class. Under DDP Lightning wraps the sampler and calls ``set_epoch`` on
    the wrapper only; the draw counter then still gives every epoch new triplets, the same on every rank."""

    def __init__(self, labels: np.ndarray, videos: np.ndarray, count: int, seed: int) -> None:
        self.by_class = [np.flatnonzero(labels == c) for c in (0, 1)]
        if not all(len(members) for members in self.by_class):
            raise DatasetNotFoundError(
                "triplets need real and fake clips in the training split; one class is empty"
            )
        self.videos, self.count, self.seed, self.epoch, self.draws = videos, count, seed, 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.draws = epoch, 0

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        rng = np.random.default_rng([self.seed, self.epoch, self.draws])
        self.draws += 1
        for _ in range(self.count):
            label = int(rng.integers(2))
            same, other = self.by_class[label], self.by_class[1 - label]
            anchor = int(rng.choice(same))
            elsewhere = same[self.videos[same] != self.videos[anchor]]  # another video when the class has one
            positive = int(rng.choice(elsewhere if len(elsewhere) else same))
            yield anchor, positive, int(rng.choice(other))
