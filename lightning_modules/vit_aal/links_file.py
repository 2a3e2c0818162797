"""The links file a ViT + links run leaves: ``links.pt`` (what the advanced module's ``links_path`` reads) and
``links.csv`` (each head's top channels), written after ``fit`` and read back with their shape checked."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

LINKS_FILE = "links.pt"


class LinksFileError(ValueError):
    """``links_path`` does not hold links that fit this model."""


def resolve_links_path(path: Path) -> Path:
    """A ``links.pt`` file as given, or for a run folder (``runs/vit_aal_cifar100``) the newest one under it."""
    if path.is_file():
        return path
    found = sorted(path.rglob(LINKS_FILE), key=lambda p: p.stat().st_mtime) if path.is_dir() else []
    if not found:
        raise LinksFileError(
            f"links_path={str(path)!r}: no {LINKS_FILE} there; run configs/vit_aal_cifar100.yaml (or your ViT+AAL "
            "config) to the end first, it writes links.pt into its run folder"
        )
    return found[-1]


def read_links(path: Path, shape: tuple[int, int, int], layers: list[int]) -> torch.Tensor:
    """The link probabilities a ``links.pt`` (or a run folder holding one) keeps, checked against this model's
    shape (regularized layers, heads, CNN channels) and layers."""
    path = resolve_links_path(path)
    saved = torch.load(path, map_location="cpu", weights_only=True)
    probabilities = saved.get("probabilities") if isinstance(saved, dict) else None
    if not isinstance(probabilities, torch.Tensor) or tuple(probabilities.shape) != shape:
        found = tuple(probabilities.shape) if isinstance(probabilities, torch.Tensor) else None
        raise LinksFileError(
            f"links_path={str(path)!r} holds links of shape {found}; this model needs {shape} "
            "(regularized layers, heads, CNN channels): same backbone, cnn_layer and regularized_layers?"
        )
    if saved.get("layers") != layers:
        raise LinksFileError(
            f"links_path={str(path)!r} links layers {saved.get('layers')}, this model regularizes {layers}"
        )
    return probabilities


def export_links(
    probabilities: torch.Tensor,
    layers: list[int],
    top_k: int,
    cnn_backbone: str | None,
    cnn_layer: int | str,
    folder: Path,
) -> Path:
    """Write ``links.pt`` (what ``links_path`` reads) and ``links.csv`` (each head's top channels)."""
    folder.mkdir(parents=True, exist_ok=True)
    probabilities = probabilities.detach().float().cpu()
    path = folder / LINKS_FILE
    torch.save(
        {
            "probabilities": probabilities,
            "layers": list(layers),
            "cnn_backbone": cnn_backbone,
            "cnn_layer": cnn_layer,
        },
        path,
    )
    with open(folder / "links.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["layer", "head", "rank", "channel", "probability"])
        k = min(top_k, probabilities.shape[-1])
        values, indices = probabilities.topk(k, dim=-1)
        for l_index, layer in enumerate(layers):
            for head in range(probabilities.shape[1]):
                for rank in range(k):
                    writer.writerow(
                        [
                            layer,
                            head,
                            rank + 1,
                            int(indices[l_index, head, rank]),
                            f"{float(values[l_index, head, rank]):.6f}",
                        ]
                    )
    return path
