"""Extracting per-frame style latents: a step the StyleGRU and StyleFlow modules own (their ``prepare_data``, when
``style_encoder`` is set) and ``scripts/extract_latents.py`` runs ahead of time.

The datamodule lists the video folders, reads their frames and writes what it is given beside them
(``latents.npy`` + ``latents.json``, :meth:`datamodules.faceforensics.FaceVideoDataModule.write_latents`); this
module only encodes. A video whose latents the same encoder weights already wrote is skipped, so an interrupted
extraction resumes, and a changed encoder re-extracts.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from datamodules.batch import VideoLatents
from lightning_modules.outputs.checkpoints import newest_last_checkpoint
from lightning_modules.styleflow.style_encoders import load_style_encoder, style_latent_dim

log = logging.getLogger(__name__)


def encoder_identity(path: str | Path) -> str:
    """Names the weights latents came from: the checkpoint file, its size and modification time."""
    path = Path(path)
    if path.is_dir():
        path = newest_last_checkpoint(path) or path
    stat = path.stat()
    return hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]


@torch.no_grad()
def ensure_latents(
    data: Any,
    encoder_path: str | Path,
    batch_size: int = 64,
    device: str | None = None,
    splits: tuple[str, ...] | None = None,
) -> int:
    """Encode every video of ``data`` (a :class:`FaceVideoDataModule`; of ``splits`` only when given, see
    :meth:`~FaceVideoDataModule.video_folders`) whose latents this encoder did not write; returns how many were
    encoded."""
    identity = encoder_identity(encoder_path)
    folders = data.video_folders(tuple(splits)) if splits else data.video_folders()
    todo = [folder for folder in folders if data.latents_written_by(folder) != identity]
    if not todo:
        return 0
    from tqdm.auto import tqdm

    encoder = load_style_encoder(encoder_path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    encoder.to(device)
    log.warning("style latents from %s (%s), for %d videos", encoder.description, encoder_path, len(todo))
    info = {"encoder": str(encoder_path), "identity": identity, "description": encoder.description,
            "layers": encoder.num_layers, "layer_dim": encoder.layer_dim}  # fmt: skip
    for folder in tqdm(todo, desc="style latents", unit="video"):
        rows = []
        for images in data.frame_batches(folder, encoder.input_size, batch_size):
            batch = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255).to(device)
            rows.append(encoder(batch).float().cpu().numpy())
        data.write_latents(folder, np.concatenate(rows), info)
    return len(todo)


def latent_width(style_encoder: str | None, linked: int | None) -> int:
    """The latent width a StyleGRU reads: its style encoder's when it has one (the latents on disk are then
    re-extracted with it), else the width of the latents already on disk (linked from the data)."""
    if style_encoder:
        return style_latent_dim(style_encoder)
    if not linked:
        raise ValueError(
            "no style latents to read: set model.init_args.style_encoder (a face-autoencoder run or a pSp "
            "checkpoint), or write them with python scripts/extract_latents.py --root <root> --encoder <...>"
        )
    return int(linked)


def extract_for(module: Any, style_encoder: str | None) -> None:
    """A module's ``prepare_data``: extract what its datamodule's videos lack with ``style_encoder``."""
    data = module.data_if(VideoLatents)
    if style_encoder and data is not None and "latents" in data.inputs:
        # predicting on your videos (predict_dir): theirs only, the training data need not be here
        predicting = module.trainer.state.fn == "predict" and data.predict_dir
        splits = ("predict_dir",) if predicting else None
        ensure_latents(data, style_encoder, batch_size=max(8, data.batch_size), splits=splits)
