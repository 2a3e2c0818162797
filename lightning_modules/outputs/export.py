"""A trained model as one ONNX file that computes what ``predict`` computes, from the same inputs.

The exported graph is the routine's own ``predict_scores`` (the function ``predict_step`` calls), so there is one
inference path: what the ONNX file returns is what ``predictions.csv`` holds, up to float rounding (a test checks
it through onnxruntime). Everything a model does after the datamodule's transform is inside: input normalization,
filters, a PatchCore memory bank, a calibrator. Beside ``<name>.onnx``, ``<name>.json`` says what goes in (names,
shapes, the value range and the transform that makes it) and what comes out, with the thresholds ``predict``
decides with.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightning_modules.components.backbones import Normalize


class ScoringGraph(nn.Module):
    """``routine.predict_scores`` over positional tensors (``routine.export_input_keys``), outputs in a fixed order."""

    def __init__(self, routine: nn.Module, output_names: list[str]) -> None:
        super().__init__()
        self.routine = routine
        self.output_names = output_names

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        batch = dict(zip(self.routine.export_input_keys, inputs, strict=True))
        scores = self.routine.predict_scores(batch)
        return tuple(scores[name] for name in self.output_names)


def export_onnx(
    routine: nn.Module,
    batch: dict[str, Any],
    path: str | Path,
    preprocessing: list[dict[str, Any]] | None = None,
) -> Path:
    """Write ``path`` (ONNX, the batch dimension dynamic) and its ``.json`` description; ``batch`` is an example
    of what the datamodule feeds ``predict`` (its inputs fix every other dimension); ``preprocessing`` the steps
    from a file to the ``image`` input, as numbers (``datamodules/preprocessing.py``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    routine = routine.eval()
    inputs = tuple(batch[key].float() for key in routine.export_input_keys)
    with torch.no_grad():
        scores = routine.predict_scores(dict(zip(routine.export_input_keys, inputs, strict=True)))
    names = list(scores)
    graph = ScoringGraph(routine, names).eval()
    batch_dim = torch.export.Dim("batch", min=1)
    torch.onnx.export(
        graph,
        inputs,
        str(path),
        input_names=list(routine.export_input_keys),
        output_names=names,
        dynamic_shapes=(tuple({0: batch_dim} for _ in inputs),),  # forward's one *inputs argument
        external_data=False,
        dynamo=True,
    )
    description = {
        "model": type(routine).__name__,
        "inputs": {
            key: {"shape": ["batch", *tensor.shape[1:]], "dtype": "float32", "range": _range(key)}
            for key, tensor in zip(routine.export_input_keys, inputs, strict=True)
        },
        "preprocessing": preprocessing or [],
        "normalization_inside": normalizations(routine),
        "outputs": {name: {"shape": ["batch", *value.shape[1:]]} for name, value in scores.items()},
        "thresholds": _thresholds(routine),
    }
    path.with_suffix(".json").write_text(json.dumps(description, indent=1) + "\n")
    return path


def normalizations(routine: nn.Module) -> dict[str, dict[str, list[float]]]:
    """The ``(x - mean) / std`` steps inside the graph, by module, with their numbers: what the network's weights
    were trained to see (a backbone's own statistics), so a reader can check them without Python."""
    return {
        name: {"mean": module.mean.flatten().tolist(), "std": module.std.flatten().tolist()}
        for name, module in routine.named_modules()
        if isinstance(module, Normalize)
    }


def run_onnx(path: str | Path, batch: dict[str, Any], input_keys: tuple[str, ...]) -> dict[str, Any]:
    """The exported file's outputs on ``batch`` through onnxruntime (CPU), by output name."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {key: batch[key].float().cpu().numpy() for key in input_keys}
    outputs = session.run(None, feeds)
    return {o.name: value for o, value in zip(session.get_outputs(), outputs, strict=True)}


def _range(key: str) -> str:
    return {
        "image": "RGB in [0, 1], channels first; normalization is inside the graph (normalization_inside)",
        "depth": "depth as the datamodule normalizes it, in [0, 1]",
        "frames": "RGB frames in [0, 1], (batch, time, channels, height, width)",
    }.get(key, "as the datamodule's batch holds it")


def _thresholds(routine: nn.Module) -> dict[str, float]:
    found = {}
    for name in ("threshold", "image_threshold", "pixel_threshold"):
        value = getattr(routine, name, None)
        if value is not None:
            value = float(value)
            found[name] = None if math.isnan(value) else value
    return found
