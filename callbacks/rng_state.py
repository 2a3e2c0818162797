"""Random-number-generator states in every checkpoint, so a resumed run draws what the uninterrupted one drew."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states
from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)


class RNGStateCheckpoint(Callback):
    """Save the torch, CUDA, NumPy and Python generator states of every rank and restore them on resume.

    Lightning checkpoints model, optimizer, scheduler and loop state but not the generators, so a run resumed
    from the end of epoch ``k`` shuffles epoch ``k + 1`` (and draws dropout, mixing and augmentation in the main
    process) differently from the run that was never stopped. With this callback (on by default in ``cli.py``)
    the two are identical: the kill-and-resume test compares final weights. Workers need no state of their own: an
    epoch's order and every sample's augmentation seed come from one draw of the main process's generator
    (``datamodules.base.EpochSeededSampler``). Not restored: the data order within an epoch when resuming from a
    mid-epoch checkpoint (Lightning restarts that epoch's loader).
    """

    def state_dict(self) -> dict[str, Any]:
        states = _plain(_collect_rng_states(include_cuda=True))
        if dist.is_available() and dist.is_initialized():
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, states)  # Lightning saves rank 0's callback state only
            return {"per_rank": gathered}
        return {"per_rank": [states]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Restored at once, while Lightning restores the model and callbacks: before the strategy set-up, where
        # ``configure_optimizers`` asking for ``estimated_stepping_batches`` builds the resumed epoch's loader
        # iterator (which draws its base seed then). The sanity check runs inside ``isolate_rng``.
        states = state_dict.get("per_rank") or []
        distributed = dist.is_available() and dist.is_initialized()
        world_size, rank = (dist.get_world_size(), dist.get_rank()) if distributed else (1, 0)
        if len(states) != world_size:
            log.warning(
                "the checkpoint holds random states for %d processes, this run has %d: not restoring them "
                "(the resumed run is valid but will not repeat the uninterrupted one exactly)",
                len(states),
                world_size,
            )
            return
        _set_rng_states(_from_plain(states[rank]))


def _plain(states: dict[str, Any]) -> dict[str, Any]:
    """NumPy's state as a tensor, so the checkpoint stays loadable with ``torch.load(weights_only=True)``."""
    if "numpy" in states:
        name, keys, position, has_gauss, cached = states["numpy"]
        states["numpy"] = (name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached)
    return states


def _from_plain(states: dict[str, Any]) -> dict[str, Any]:
    if "numpy" in states:
        name, keys, position, has_gauss, cached = states["numpy"]
        states = {**states, "numpy": (name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached)}
    return states
