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
(``clip_len - 1`` steps, computed here for every split — the official training loader forgot them). This module
only reads latents: they are written by the StyleGRU / StyleFlow modules' ``prepare_data`` when their
``style_encoder`` is set (resumable, progress bar), or ahead of time by ``scripts/extract_latents.py``, through
:meth:`FaceVideoDataModule.write_latents`, so the on-disk format lives here.

Batches: ``frames`` (B, T, 3, S, S) in [0, 1], ``deltas`` (B, T - 1, D), ``label`` (0 real, 1 fake), ``group``,
``video_index`` (the video's position in its split, for video-level scores), ``path`` (``<video>#<first frame>``).
With ``triplets_per_epoch`` the training batches are StyleGRU's triplets instead: ``anchor``, ``positive``,
``negative`` (each like ``deltas``) and the anchor's ``label``.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from torch.utils.data import DataLoader

from datamodules.base import BaseDataModule, DatasetNotFoundError
from datamodules.batch import SplitInfo
from datamodules.image_io import list_images, read_rgb
from datamodules.standins.faceforensics import MANIPULATIONS, STANDIN_VERSION, write_faceforensics_standin
from datamodules.video_clips import (
    LATENTS,
    LATENTS_INFO,
    TripletSampler,
    VideoClipDataset,
    VideoRecord,
    clip_starts,
    read_video_folder,
)

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")
ORIGINAL = "original"
Input = Literal["frames", "latents"]


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
        triplets_per_epoch: Stage 1: training batches are this many StyleGRU triplets per epoch (50,000).
        real_only: Train on real videos only (the stand-in face autoencoder).
        flip: Random horizontal flip of whole training clips.
        per_clip: ``predict`` writes a row per clip instead of one per video (σ of the mean clip logit, as the
            test table scores videos).
        **kwargs: The shared arguments of :class:`~datamodules.base.BaseDataModule`; ``predict_dir`` is a folder
            of your videos, each a folder of its frames (faces cropped as for training), found at any depth.
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
        triplets_per_epoch: int | None = None,
        real_only: bool = False,
        flip: bool = True,
        per_clip: bool = False,
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
        self.triplets_per_epoch = triplets_per_epoch
        self.real_only, self.flip, self.per_clip = real_only, flip, per_clip
        self.videos: dict[str, list[VideoRecord]] = {}

    # ------------------------------------------------------------------------------------------ on disk
    def write_standin(self, out_dir: Path) -> None:
        write_faceforensics_standin(out_dir, size=self.standin_size, seed=self.seed)

    def missing_data_message(self) -> str:
        folders = (
            f"{{train,val,test}}/{{{ORIGINAL},{','.join(self.manipulations)}}}/<video>/"
            if self.dataset == "ffpp"
            else "{train,val,test}/{real,fake}/<video>/"
        )
        return (
            f"{self.dataset} videos not found under data.init_args.root={str(self.data_dir)!r}: expected frame folders "
            f"{folders} (FF++: request access at https://github.com/ondyari/FaceForensics, download c23, extract "
            "frames and crop faces), or run on the stand-in with --data.init_args.synthetic true"
        )

    def check_data_present(self) -> None:
        if not self.data_dir.is_dir():
            raise DatasetNotFoundError(self.missing_data_message())

    def components(self) -> list[tuple[str, bool]]:
        """The data, and the encoder the style latents were read from (the face autoencoder stands in for pSp)."""
        found = super().components()
        if "latents" in self.inputs:
            for folder in self.video_folders(("train",)):
                if (folder / LATENTS_INFO).is_file():
                    description = json.loads((folder / LATENTS_INFO).read_text()).get("description", "?")
                    found.append((f"style latents from the {description}", "stand-in" in description))
                    break
        return found

    # ---------------------------------------------------------------------------------------- latents
    def video_folders(self, splits: tuple[str, ...] = SPLITS) -> list[Path]:
        """Every video folder of ``splits`` (held-out manipulations included; ``predict_dir`` names that folder's
        videos): where latents belong."""
        return [
            video.folder
            for split in splits
            for video in (self.predict_videos() if split == "predict_dir" else self.find_videos(split))
        ]

    def predict_videos(self) -> list[VideoRecord]:
        """``predict_dir``'s videos: every folder under it that holds frames directly (label -1)."""
        root = Path(self.predict_dir)
        if not root.is_dir():
            raise DatasetNotFoundError(f"data.init_args.predict_dir={self.predict_dir!r} is not a folder")
        folders = sorted({frame.parent for frame in list_images(root)})
        if not folders:
            raise DatasetNotFoundError(
                f"data.init_args.predict_dir={self.predict_dir!r} holds no frames: expected <video>/<frame>.png "
                "folders"
            )
        return [read_video_folder(folder, -1, "predict") for folder in folders]

    @staticmethod
    def frame_batches(folder: Path, size: int, batch_size: int) -> Iterator[np.ndarray]:
        """A video's frames in order, resized to ``size`` x ``size``, as (N, size, size, 3) uint8 batches."""
        frames = list_images(folder, recursive=False)
        for start in range(0, len(frames), batch_size):
            images = [read_rgb(p) for p in frames[start : start + batch_size]]
            yield np.stack(
                [
                    i
                    if i.shape[:2] == (size, size)
                    else cv2.resize(i, (size, size), interpolation=cv2.INTER_AREA)
                    for i in images
                ]
            )

    @staticmethod
    def latents_written_by(folder: Path) -> str | None:
        """The identity of the encoder whose latents are beside the frames (None when there are none)."""
        info = folder / LATENTS_INFO
        if not (folder / LATENTS).is_file() or not info.is_file():
            return None
        try:
            return json.loads(info.read_text()).get("identity")
        except json.JSONDecodeError:
            return None

    @staticmethod
    def write_latents(folder: Path, latents: np.ndarray, info: dict[str, Any]) -> None:
        """``latents.npy`` (frames x width, float16) and ``latents.json`` (who wrote them); written to a temporary
        name and renamed, so an interrupted extraction never leaves a half-written file."""
        tmp = folder / f".{LATENTS}.tmp.npy"
        np.save(tmp, latents.astype(np.float16))
        os.replace(tmp, folder / LATENTS)
        (folder / LATENTS_INFO).write_text(json.dumps(info) + "\n")

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
        if stage == "predict" and self.predict_dir:
            if "predict_dir" not in self.datasets:
                self._add_split("predict_dir", self.predict_videos())
            return
        if set(SPLITS) <= set(self.datasets):
            return
        for split in SPLITS:
            videos = self.find_videos(split)
            if split != "test":
                videos = [
                    v for v in videos if v.group not in self.held_out and not (self.real_only and v.label)
                ]
            self._add_split(split, videos)
        log.info(
            "%s clips (train, val, test): %s, held out of training: %s",
            self.dataset,
            [len(self.datasets[s]) for s in SPLITS],
            self.held_out or "none",
        )

    def _add_split(self, split: str, videos: list[VideoRecord]) -> None:
        """``videos`` cut into clips as ``self.datasets[split]`` (too short ones dropped and counted)."""
        if "latents" in self.inputs:
            missing = [v.folder for v in videos if not (v.folder / LATENTS).is_file()]
            if missing:
                raise DatasetNotFoundError(
                    f"{len(missing)} {split} videos have no {LATENTS} (first: {missing[0]}): set "
                    "model.init_args.style_encoder to a face-autoencoder run or a pSp checkpoint, or run "
                    "python scripts/extract_latents.py --root <root> --encoder <run or checkpoint>"
                )
        clips = [
            (i, s)
            for i, v in enumerate(videos)
            for s in clip_starts(len(v.frames), self.clip_len, self.min_frames, self.max_clips_per_video)
        ]
        short = [v.folder for v in videos if len(v.frames) < self.min_frames]
        if short:
            log.warning(
                "%s: %d videos shorter than min_frames=%d dropped: %s",
                split,
                len(short),
                self.min_frames,
                ", ".join(map(str, short[:5])) + (" ..." if len(short) > 5 else ""),
            )
        if not clips:
            where = self.predict_dir if split == "predict_dir" else self.data_dir
            raise DatasetNotFoundError(f"{split}: no video under {where} has {self.min_frames}+ frames")
        self.videos[split] = videos
        self.datasets[split] = VideoClipDataset(
            videos,
            clips,
            self.inputs,
            self.clip_len,
            self.image_size,
            self.flip and split == "train",
            self.bad_files,
        )

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
    def latent_dim(self) -> int | None:
        """Width of one frame's style latent (linked to the model), read from the first ``latents.npy`` found;
        0 when batches carry no latents, None when none is written yet (the model's style encoder then says)."""
        if "latents" not in self.inputs:
            return 0
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
        return None

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

    def split_info(self, split: str) -> SplitInfo:
        """Every split names the real group; the test split the manipulations training saw; a predict split
        whose rows are per video (``per_clip`` false) each video's folder and clip count, in video order."""
        info = replace(super().split_info(split), real_group=self.real_group, per_clip=self.per_clip)
        if split == "test":
            return replace(info, seen=tuple(self.effective_seen_generators()))
        if split == "predict" and not self.per_clip:
            dataset = self.datasets["predict_dir" if self.predict_dir else "test"]
            clips = Counter(video for video, _ in dataset.clips)
            videos = tuple((str(video.folder), clips[i]) for i, video in enumerate(dataset.videos))
            return replace(info, videos=videos)
        return info
