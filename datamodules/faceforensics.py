"""Face videos as extracted frames: FaceForensics++ and a generic real/fake layout, cut into fixed-length clips.

Layouts (``dataset``):

* ``ffpp``: ``<root>/<split>/<original|Deepfakes|Face2Face|FaceSwap|NeuralTextures|...>/<video_id>/<frame>.png``.
  When ``<root>/splits/{train,val,test}.json`` (FF++'s official lists of ``[target, source]`` pairs) exist, the
  split folders are dropped: ``<root>/<original|manipulation>/<video_id>/`` and the lists say which video is
  where (``original/<a>``, ``<manipulation>/<a>_<b>`` and ``<b>_<a>``). ``group`` = the manipulation.
* ``generic``: ``<root>/<split>/{real,fake}/<video_id>/<frame>`` for Celeb-DF, DFD, DFDC or a user's own videos;
  ``group`` = the dataset (the root folder's name).

Faces are assumed already cropped and aligned (the official pipeline: RetinaFace, 68 landmarks, SORT tracking,
each clip aligned to its mean landmarks and cropped at 256; pSp expects FFHQ-aligned 256 px faces). Do that once
with your face tool of choice and store the crops as frames.

Clips: non-overlapping windows of ``clip_len`` frames (32). A video shorter than ``min_frames`` (16) is dropped
and counted; one of ``min_frames .. clip_len - 1`` frames gives one clip, reflect-padded to ``clip_len``.
Per-video style latents (``latents.npy`` beside the frames, shape (frames, layers x width)) are read when
``inputs`` holds ``latents``; batches then carry ``deltas``, the clip's frame-to-frame differences
(``clip_len - 1`` steps, computed here for every split — the official training loader forgot them). When
``style_encoder`` is set, missing latents are extracted in ``prepare_data`` (resumable, progress bar; also
``scripts/extract_latents.py``).

Batches: ``frames`` (B, T, 3, S, S) in [0, 1], ``deltas`` (B, T - 1, D), ``label`` (0 real, 1 fake), ``group``,
``video_index`` (the video's position in its split, for video-level scores), ``path`` (``<video>#<first frame>``).
With ``triplets_per_epoch`` the training batches are StyleGRU's triplets instead: ``anchor``, ``positive``,
``negative`` (each like ``deltas``) and the anchor's ``label``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from datamodules.base import BaseDataModule, DatasetNotFoundError, skip_or_raise
from datamodules.image_io import BadImageError, list_images, read_rgb
from datamodules.standins.faceforensics import MANIPULATIONS, STANDIN_VERSION, write_faceforensics_standin

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")
ORIGINAL = "original"
LATENTS = "latents.npy"
Input = Literal["frames", "latents"]


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

    def __init__(self, videos: list[VideoRecord], clips: list[tuple[int, int]], inputs: list[str], clip_len: int,
                 image_size: int, flip: bool, bad_files: str) -> None:  # fmt: skip
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
        sample: dict[str, Any] = {"label": video.label, "group": video.group, "video_index": video_index,
                                  "sample_index": index, "path": f"{video.folder}#{start}"}  # fmt: skip
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


class FaceVideoDataModule(BaseDataModule):
    """Clips of face videos (FF++ or a real/fake layout), with their frames and / or per-frame style latents.

    Args:
        dataset: ``ffpp`` or ``generic`` (see the module docstring for the layouts).
        manipulations: FF++ manipulation folders to read (default the four of FF++ c23).
        held_out: Manipulations left out of training and validation (leave-one-manipulation-out); the test
            table still lists them, as the unseen ones.
        clip_len: Frames per clip (32; StyleGRU's batch norm is over the ``clip_len - 1`` steps).
        min_frames: Shorter videos are dropped (counted in the log); longer ones under ``clip_len`` are padded.
        max_clips_per_video: Keep at most this many clips of each video (all when null).
        inputs: What batches carry: ``frames``, ``latents`` (as ``deltas``) or both.
        style_encoder: A face-autoencoder run folder / checkpoint or a pSp checkpoint; latents missing beside
            the frames are extracted with it in ``prepare_data``. Null: they must be there already.
        triplets_per_epoch: Stage 1: training batches are this many StyleGRU triplets per epoch (50,000).
        real_only: Train on real videos only (the stand-in face autoencoder).
        flip: Random horizontal flip of whole training clips.
        **kwargs: The shared arguments of :class:`~datamodules.base.BaseDataModule`.
    """

    layout = "faceforensics"
    standin_version = STANDIN_VERSION

    def __init__(
        self,
        dataset: Literal["ffpp", "generic"] = "ffpp",
        manipulations: list[str] | None = None,
        held_out: list[str] | None = None,
        clip_len: int = 32,
        min_frames: int = 16,
        max_clips_per_video: int | None = None,
        inputs: list[Input] | None = None,
        style_encoder: str | None = None,
        triplets_per_epoch: int | None = None,
        real_only: bool = False,
        flip: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("root", "data/ffpp")
        super().__init__(**kwargs)
        if dataset not in ("ffpp", "generic"):
            raise ValueError(f"data.init_args.dataset must be ffpp or generic, got {dataset!r}")
        if clip_len < 2 or not 1 <= min_frames <= clip_len:
            raise ValueError(
                f"need clip_len >= 2 and 1 <= min_frames <= clip_len, got {clip_len}, {min_frames}"
            )
        self.inputs = list(inputs or ["frames", "latents"])
        unknown = sorted(set(self.inputs) - {"frames", "latents"})
        if unknown or not self.inputs:
            raise ValueError(f"data.init_args.inputs must name frames and / or latents, got {self.inputs}")
        self.dataset = dataset
        self.manipulations = list(manipulations or MANIPULATIONS)
        self.held_out = list(held_out or [])
        missing = sorted(set(self.held_out) - set(self.manipulations))
        if missing:
            raise ValueError(
                f"data.init_args.held_out: {missing} are not among manipulations {self.manipulations}"
            )
        self.clip_len, self.min_frames, self.max_clips_per_video = clip_len, min_frames, max_clips_per_video
        self.style_encoder, self.triplets_per_epoch = style_encoder, triplets_per_epoch
        self.real_only, self.flip = real_only, flip
        self.videos: dict[str, list[VideoRecord]] = {}

    # ------------------------------------------------------------------------------------------ on disk
    def write_standin(self, out_dir: Path) -> None:
        write_faceforensics_standin(out_dir, size=self.standin_size, seed=self.seed)

    def missing_data_message(self) -> str:
        folders = (f"{{train,val,test}}/{{{ORIGINAL},{','.join(self.manipulations)}}}/<video>/"
                   if self.dataset == "ffpp" else "{train,val,test}/{real,fake}/<video>/")  # fmt: skip
        return (
            f"{self.dataset} videos not found under data.init_args.root={str(self.data_dir)!r}: expected frame folders "
            f"{folders} (FF++: request access at https://github.com/ondyari/FaceForensics, download c23, extract "
            "frames and crop faces), or run on the stand-in with --data.init_args.synthetic true"
        )

    def check_data_present(self) -> None:
        if not self.data_dir.is_dir():
            raise DatasetNotFoundError(self.missing_data_message())

    def prepare_data(self) -> None:
        super().prepare_data()
        if "latents" in self.inputs and self.style_encoder:
            from lightning_modules.styleflow.style_encoders import ensure_latents

            folders = [v.folder for split in SPLITS for v in self.find_videos(split)]
            ensure_latents(folders, self.style_encoder, batch_size=max(8, self.batch_size))

    def _official_lists(self) -> dict[str, list[list[str]]] | None:
        folder = self.data_dir / "splits"
        if self.dataset != "ffpp" or not all((folder / f"{s}.json").is_file() for s in SPLITS):
            return None
        return {s: json.loads((folder / f"{s}.json").read_text()) for s in SPLITS}

    def find_videos(self, split: str) -> list[VideoRecord]:
        """The split's videos in a fixed order (originals, then each manipulation), frames listed."""
        if self.dataset == "generic":
            base = self.data_dir / split
            kinds = [("real", 0, self.data_dir.name), ("fake", 1, self.data_dir.name)]
            return self._read(base, kinds, None)
        lists = self._official_lists()
        kinds = [(ORIGINAL, 0, ORIGINAL)] + [(m, 1, m) for m in self.manipulations]
        if lists is None:
            return self._read(self.data_dir / split, kinds, None)
        pairs = lists[split]
        names = {ORIGINAL: sorted({v for pair in pairs for v in pair})}
        names |= {
            m: sorted({f"{a}_{b}" for a, b in pairs} | {f"{b}_{a}" for a, b in pairs})
            for m in self.manipulations
        }
        return self._read(self.data_dir, kinds, names)

    def _read(
        self, base: Path, kinds: list[tuple[str, int, str]], names: dict[str, list[str]] | None
    ) -> list[VideoRecord]:
        videos = []
        for folder_name, label, group in kinds:
            folder = base / folder_name
            if not folder.is_dir():
                raise DatasetNotFoundError(f"{folder} does not exist: {self.missing_data_message()}")
            wanted = names[folder_name] if names else sorted(p.name for p in folder.iterdir() if p.is_dir())
            videos += [
                read_video_folder(folder / name, label, group) for name in wanted if (folder / name).is_dir()
            ]
        return videos

    # ----------------------------------------------------------------------------------------- lightning
    def setup(self, stage: str) -> None:
        if self.datasets:
            return
        for split in SPLITS:
            videos = self.find_videos(split)
            if split != "test":
                videos = [
                    v for v in videos if v.group not in self.held_out and not (self.real_only and v.label)
                ]
            if "latents" in self.inputs:
                missing = [v.folder for v in videos if not (v.folder / LATENTS).is_file()]
                if missing:
                    raise DatasetNotFoundError(
                        f"{len(missing)} {split} videos have no {LATENTS} (first: {missing[0]}): set "
                        "data.init_args.style_encoder to a face-autoencoder run or a pSp checkpoint, or run "
                        "python scripts/extract_latents.py --root <root> --encoder <run or checkpoint>"
                    )
            clips = [(i, s) for i, v in enumerate(videos)
                     for s in clip_starts(len(v.frames), self.clip_len, self.min_frames, self.max_clips_per_video)]  # fmt: skip
            dropped = sum(1 for v in videos if len(v.frames) < self.min_frames)
            if dropped:
                log.warning(
                    "%s: %d videos shorter than min_frames=%d dropped", split, dropped, self.min_frames
                )
            if not clips:
                raise DatasetNotFoundError(
                    f"{split}: no video under {self.data_dir} has {self.min_frames}+ frames"
                )
            self.videos[split] = videos
            self.datasets[split] = VideoClipDataset(videos, clips, self.inputs, self.clip_len, self.image_size,
                                                    self.flip and split == "train", self.bad_files)  # fmt: skip
        log.info("%s clips (train, val, test): %s, held out of training: %s", self.dataset,
                 [len(self.datasets[s]) for s in SPLITS], self.held_out or "none")  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        if not self.triplets_per_epoch:
            return self.loader("train")
        dataset = self.datasets["train"]
        videos = np.array([v for v, _ in dataset.clips])
        sampler = TripletSampler(dataset.labels(), videos, self.triplets_per_epoch, self.seed)
        return self.make_loader(dataset, train=True, sampler=sampler)

    @property
    def num_classes(self) -> int:
        return 2

    @property
    def latent_dim(self) -> int:
        """Width of one frame's style latent (linked to the model): from the style encoder, else from the first
        ``latents.npy`` found; 0 when batches carry no latents."""
        if "latents" not in self.inputs:
            return 0
        if self.style_encoder:
            from lightning_modules.styleflow.style_encoders import style_latent_dim

            return style_latent_dim(self.style_encoder)
        if self.synthetic:
            self.prepare_data()
        for split in SPLITS:
            try:
                videos = self.find_videos(split)
            except DatasetNotFoundError:
                continue
            for video in videos:
                if (video.folder / LATENTS).is_file():
                    return int(np.load(video.folder / LATENTS, mmap_mode="r").shape[1])
        raise DatasetNotFoundError(
            f"no {LATENTS} under {self.data_dir}: set data.init_args.style_encoder or run scripts/extract_latents.py"
        )

    @property
    def real_group(self) -> str | None:
        """The group whose real videos every manipulation is scored against (FF++'s originals)."""
        return ORIGINAL if self.dataset == "ffpp" else None

    def groups_for(self, split: str) -> list[str]:
        if self.dataset == "generic":
            return [self.data_dir.name]
        wanted = [m for m in self.manipulations if split == "test" or m not in self.held_out]
        return [ORIGINAL, *wanted]

    def effective_seen_generators(self) -> list[str]:
        """Manipulations trained on (the test table's "seen" ones); the held-out ones are unseen."""
        return [m for m in self.manipulations if m not in self.held_out]
