"""GPU speed switches as callbacks for any module: ``torch.compile`` of its networks and channels-last memory.

Both leave the module's parameters, their names and its checkpoints as they were, so a run trained with them
tests, predicts and resumes without them (and the other way round). The CLI adds them for ``--compile true`` and
``--channels_last true``; in a config they are plain ``trainer.callbacks`` entries with more options.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn
from torchmetrics import Metric, MetricCollection


def network_children(pl_module: L.LightningModule, names: list[str] | None) -> dict[str, nn.Module]:
    """The module's networks by attribute name: ``names``, or every direct child that holds parameters and is no
    torchmetrics metric (a metric's state updates are not worth compiling and break graphs)."""
    if names is not None:
        missing = [n for n in names if not isinstance(getattr(pl_module, n, None), nn.Module)]
        if missing:
            raise ValueError(
                f"{type(pl_module).__name__} has no network named {', '.join(missing)} to speed up; its "
                f"children: {', '.join(name for name, _ in pl_module.named_children())}"
            )
        return {n: getattr(pl_module, n) for n in names}
    return {
        name: child
        for name, child in pl_module.named_children()
        if not isinstance(child, Metric | MetricCollection) and any(True for _ in child.parameters())
    }


class CompileNetworks(Callback):
    """``torch.compile`` the module's networks in place (``nn.Module.compile``) before any loop runs.

    In place, not ``torch.compile(net)``: the wrapper that returns renames every parameter (``_orig_mod.``), so
    checkpoints would no longer load into an uncompiled module. What is compiled is the network's ``__call__``, so
    a module calling ``self.net(x)`` runs the compiled graph; a method called directly (``self.net.embed(x)``) runs
    eagerly. The first batches of each new input shape pay the compilation.

    Args:
        modules: Attribute names of the networks (``[net]``); null: every direct child with parameters.
        mode: ``torch.compile`` mode (null: default; ``max-autotune`` compiles longer for faster kernels).
        backend: ``torch.compile`` backend (``inductor``; ``eager`` traces without generating code, for tests).
        dynamic: Compile for varying input shapes (null: decided by torch on the second shape seen).
    """

    def __init__(
        self,
        modules: list[str] | None = None,
        mode: str | None = None,
        backend: str = "inductor",
        dynamic: bool | None = None,
    ) -> None:
        self.modules, self.mode, self.backend, self.dynamic = modules, mode, backend, dynamic
        self.compiled: list[str] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for name, network in network_children(pl_module, self.modules).items():
            if name not in self.compiled:
                network.compile(mode=self.mode, backend=self.backend, dynamic=self.dynamic)
                self.compiled.append(name)


class ChannelsLast(Callback):
    """Channels-last (NHWC) memory for the module's weights and the batches' 4-D ``image``: convolutions on a
    GPU with tensor cores (bf16 / fp16) run their fastest kernels in it. Values do not change, only strides.

    Args:
        key: The batch key converted in every loop (``image``; a dict batch without it is left alone).
    """

    def __init__(self, key: str = "image") -> None:
        self.key = key

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        pl_module.to(memory_format=torch.channels_last)

    def _convert(self, batch: Any) -> None:
        if isinstance(batch, dict) and isinstance(batch.get(self.key), torch.Tensor):
            if batch[self.key].ndim == 4:
                batch[self.key] = batch[self.key].contiguous(memory_format=torch.channels_last)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._convert(batch)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._convert(batch)

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._convert(batch)

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._convert(batch)


# the CLI's switches (``--compile true``, ``--channels_last true``): key -> (the callback it adds, its help)
SPEED_SWITCHES: dict[str, tuple[type[Callback], str]] = {
    "compile": (
        CompileNetworks,
        "torch.compile the model's networks in place (callbacks.CompileNetworks; checkpoints unchanged)",
    ),
    "channels_last": (
        ChannelsLast,
        "Channels-last memory for the model and its image batches (callbacks.ChannelsLast; for GPUs)",
    ),
}
