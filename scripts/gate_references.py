"""What the text-guided generation's diversity gate says of images whose variety is known, without training.

The gate (``lightning_modules/tgi_ad/diversity.py``) asks generated samples of one source to differ from each
other at least 0.3x as much as different real normals do, and to be about as sharp as the reals. Whether a
failing generator fails for its own reasons or because the gate asks for the impossible is read here: on the
MVTec-layout stand-in's few shots, three kinds of "samples" per real normal are scored by the same gate, its
distances through the packaged ImageNet EfficientNet-Lite0's features (as in a generation run with
``--imagenet lite0``; ``features="random"``: a randomly initialised ResNet-18, the first offline generations'):

- exact copies of the source (no variety: the spread must fail),
- blurred copies (the failure the gate was written for: both must fail),
- the classical augmentation of ``augmented_normals`` (flip, 4 degrees, 3 % scale and shift, 7 % gain: the
  variety a plain control adds), which a generator worth its cost should at least match.

The check passes when the gate fails the copies and the blurred copies and passes the augmentation: then the gate
separates known variety from known failure on this stand-in.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.transforms.functional import gaussian_blur

from datamodules.mvtec import MVTecDataModule
from lightning_modules.components.feature_extractor import FrozenFeatures
from lightning_modules.components.packaged_weights import SHORT_NAMES
from lightning_modules.tgi_ad.diversity import diversity_gate, generation_diversity

# pixels at 128 px: a plain blur, not matched to the generations (its copies' sharpness ratio is 0.01-0.05 on
# the small stand-in, below the failing generations' 0.04-0.39; the table is in the TGI-AD README)
BLUR_SIGMA = 1.5
# kind -> whether the gate must pass it
EXPECTED = {"copies": False, "blurred copies": False, "augmented (the control)": True}


def shots_and_augmented(
    category: str, shots: int, per_source: int, seed: int, root: Path, size: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The category's ``shots`` real normals (as the demos choose them: data seed ``seed``), ``per_source``
    augmented copies of each drawn by the datamodule's own control augmentation, and each copy's source index."""
    data = MVTecDataModule(
        category=category,
        shots=shots,
        augmented_normals=shots * per_source,
        root=str(root),
        synthetic=True,
        standin_size=size,
        image_size=128,
        seed=seed,
        num_workers=0,
    )
    data.prepare_data()
    data.setup("fit")
    dataset = data.datasets["train"]  # the shots first, then the augmented copies, cycled over the shots
    items = [dataset[i] for i in range(len(dataset))]
    images = torch.stack([item["image"] for item in items])
    sources = torch.arange(shots * per_source) % shots
    return images[:shots], images[shots:], sources


def gate_row(
    features: FrozenFeatures, samples: torch.Tensor, sources: torch.Tensor, normals: torch.Tensor
) -> dict:
    statistics = generation_diversity(features, samples, sources, normals)
    return statistics | diversity_gate(statistics, samples, normals)


def gate_references(
    categories: list[str],
    shots: int = 4,
    per_source: int = 8,
    seed: int = 0,
    root: Path = Path(".standins"),
    size: str = "small",
    features: str = "lite0",
) -> tuple[str, bool]:
    """A markdown table of spread and sharpness ratios per category and kind, and whether every kind got the
    verdict ``EXPECTED`` asks of it."""
    torch.manual_seed(seed)
    if features == "random":
        network = FrozenFeatures("resnet18", (1, 2), pretrained=False)
    else:
        network = FrozenFeatures(SHORT_NAMES[features], (1, 2), pretrained=True)
    lines = [
        "| category | kind | spread ratio | sharpness ratio | gate | expected |",
        "|---|---|---:|---:|---|---|",
    ]
    passed = True
    for category in categories:
        normals, augmented, sources = shots_and_augmented(category, shots, per_source, seed, root, size)
        copies = normals[sources]
        kinds = {
            "copies": copies,
            "blurred copies": gaussian_blur(copies, kernel_size=9, sigma=BLUR_SIGMA),
            "augmented (the control)": augmented,
        }
        for kind, samples in kinds.items():
            row = gate_row(network, samples, sources, normals)
            ok = row["gate_passes"] == EXPECTED[kind]
            passed &= ok
            verdict = "passes" if row["gate_passes"] else "fails"
            expected = f"{'passes' if EXPECTED[kind] else 'fails'}{'' if ok else ' (NOT MET)'}"
            lines.append(
                f"| {category} | {kind} | {row['spread_ratio']:.3f} | {row['sharpness_ratio']:.3f} | {verdict} | "
                f"{expected} |"
            )
    return "\n".join(lines) + "\n", passed
