"""Checkpoints of runs: finding a run's newest one, checking a ``--ckpt_path`` before Lightning loads it, and
reading a sub-network out of another run's checkpoint (a pre-training stage whose result a later config loads:
the TVQ-VAE's VQ models, StyleFlow's face autoencoder and StyleGRU), given as a file or as its run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


class CheckpointNotFoundError(FileNotFoundError):
    """``--ckpt_path`` names no checkpoint."""


class CheckpointError(ValueError):
    """``--ckpt_path`` names a file that is not a checkpoint of the configured model."""


class RunCheckpointError(ValueError):
    """A path that should hold another run's checkpoint does not (missing, or another method's)."""


def newest_last_checkpoint(run_folder: Path, pattern: str = "**/last.ckpt") -> Path | None:
    """The most recently written checkpoint matching ``pattern`` under a run folder (None when there is none)."""
    found = sorted((p for p in run_folder.glob(pattern) if p.is_file()), key=lambda p: p.stat().st_mtime)
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


def trained_on(path: Path) -> dict[str, Any]:
    """The data settings a checkpoint's model was trained with (``image_size``...; {} for older checkpoints)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return dict(checkpoint.get("trained_on") or {})


def adopt_trained_input(path: Path, data_args: Any, given: set[str]) -> list[str]:
    """Set ``data_args`` (the config's data ``init_args``) to the input settings the checkpoint was trained with,
    where the config files said otherwise; a value given on the command line stays, with a notice. Returns the
    lines to print."""
    notes = []
    for key, trained in trained_on(path).items():
        if key not in data_args or data_args[key] == trained:
            continue
        if key in given:
            notes.append(
                f"data.init_args.{key}={_short(data_args[key])} (given on the command line), but the model in "
                f"{path.name} was trained at {_short(trained)}"
            )
        else:
            notes.append(
                f"data.init_args.{key}: {_short(trained)}, as the model in {path.name} was trained (the config "
                f"says {_short(data_args[key])}; give it on the command line to override)"
            )
            setattr(data_args, key, trained)
    return notes


def _short(value: Any) -> str:
    """A setting as a note shows it: a list (a vocabulary) by its length and first entries."""
    if isinstance(value, list | tuple) and len(value) > 5:
        return f"[{', '.join(map(str, value[:3]))}, ... ({len(value)} entries)]"
    return str(value)


def check_checkpoint(path: Path, model: Any, weights_only: bool) -> None:
    """Fail in one line when ``path`` is not a readable checkpoint or was written by another model class
    (Lightning would otherwise stop deep inside ``load_state_dict`` with hundreds of missing keys)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=weights_only, mmap=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError... for a bad file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        hint = " (pass --weights_only false if you trust it)" if "weights_only" in reason.lower() else ""
        raise CheckpointError(f"--ckpt_path {path}: not a loadable checkpoint: {reason}{hint}") from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"--ckpt_path {path}: not a Lightning checkpoint (no 'state_dict' in it)")
    saved_by = (checkpoint.get("hyper_parameters") or {}).get("_class_path")
    wanted = model.get("class_path") if hasattr(model, "get") else None
    if saved_by and wanted and saved_by != wanted:
        raise CheckpointError(
            f"--ckpt_path {path} was written by {saved_by}, but the config builds {wanted}: "
            f"pass that method's config (or its checkpoint)"
        )
