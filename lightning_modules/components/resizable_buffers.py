"""Buffers whose size is only known after fitting (a memory bank, the generated images kept so far).

An ``nn.Module`` registers such a buffer empty; a checkpoint holds it at its fitted size, which a strict
``load_state_dict`` would refuse as a size mismatch. Listing the buffer in ``resizable_buffers`` makes the module
take the checkpoint's shape first, and only for those buffers: every other shape is still checked.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class ResizableBuffersMixin(nn.Module):
    """Mixin for an ``nn.Module``: the buffers named in ``resizable_buffers`` take a loaded state dict's shape."""

    resizable_buffers: tuple[str, ...] = ()

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        for name in self.resizable_buffers:
            saved = state_dict.get(prefix + name)
            current = self._buffers.get(name)
            if isinstance(saved, torch.Tensor) and current is not None and saved.shape != current.shape:
                self._buffers[name] = torch.empty(saved.shape, dtype=current.dtype, device=current.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
