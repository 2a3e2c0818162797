"""Reading a sub-network out of another run's checkpoint: a pre-training stage whose result a later config loads
(the TVQ-VAE's VQ models, StyleFlow's face autoencoder and StyleGRU), given as a file or as its run folder."""

from __future__ import annotations

from pathlib import Path

import torch


class RunCheckpointError(ValueError):
    """A path that should hold another run's checkpoint does not (missing, or another method's)."""


def newest_last_checkpoint(run_folder: Path) -> Path | None:
    """The most recently written ``last.ckpt`` anywhere under a run folder (None when there is none)."""
    found = sorted(run_folder.rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def read_run_checkpoint(path: str | Path, key: str, prefix: str, config: str, module: str, needs: str):
    """(hyper-parameters, the sub-network's state dict under ``prefix``) of a checkpoint file, or of the newest
    ``last.ckpt`` under a run folder; one-line :class:`RunCheckpointError` naming ``key`` and the ``config`` to
    run first, or saying it is not a ``module`` checkpoint (no ``prefix`` weights, no ``needs`` hyper-parameter)."""
    path = Path(path)
    if path.is_dir():
        found = newest_last_checkpoint(path)
        if found is None:
            raise RunCheckpointError(
                f"{key}={str(path)!r}: no last.ckpt under it; run configs/{config} first"
            )
        path = found
    if not path.is_file():
        raise RunCheckpointError(f"{key}={str(path)!r}: no such file; run configs/{config} first")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    h = checkpoint.get("hyper_parameters", {})
    state = {k.removeprefix(prefix): v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    if not state or needs not in h:
        raise RunCheckpointError(f"{key}={str(path)!r} is not a {module} checkpoint")
    return h, state
