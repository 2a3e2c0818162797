"""Does the MVTec-layout stand-in leave room above frozen ImageNet features? (``check_standin.py --layout mvtec
--headroom lite0``)

Generated normal images can only show their worth where the baseline is not already perfect. The anomaly
methods' papers run on an ImageNet-pretrained CNN's features; if a one-shot nearest-neighbour score on those
features (PatchCore's, training-free: a memory bank of one normal image's patch features, no coreset) already
ranked every defect above every normal test image, no few-shot claim could be seen. Scored per category, image
AUROC mean over ``DRAWS`` one-shot draws; the gate asks every category for ``HEADROOM`` (the features see the
defects, and do not see them all).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from datamodules.anomaly_images import find_records
from datamodules.image_io import read_rgb
from datamodules.standins.mvtec import SIZES, write_mvtec_standin
from lightning_modules.components.packaged_weights import SHORT_NAMES
from lightning_modules.metrics.detection import auroc
from lightning_modules.patchcore.networks import PatchCoreNet

HEADROOM = (60.0, 90.0)  # image AUROC (%) of the one-shot score, every category
DRAWS = (0, 1, 2)


def load(records: list) -> torch.Tensor:
    """The records' images as one (N, 3, H, W) float tensor in [0, 1]."""
    return torch.from_numpy(np.stack([read_rgb(r.path) for r in records])).permute(0, 3, 1, 2).float() / 255


@torch.no_grad()
def one_shot_auroc(category_dir: Path, weights: str, draw: int) -> float:
    """Image AUROC (%) of PatchCore's nearest-neighbour score with a bank of one normal training image's patches."""
    train = find_records(category_dir, "mvtec_ad", "train")
    test = find_records(category_dir, "mvtec_ad", "test")
    shot = train[int(np.random.default_rng(draw).integers(len(train)))]
    net = PatchCoreNet(backbone=SHORT_NAMES[weights], pretrained=True, coreset_ratio=1.0).eval()
    embedding = net.embed(load([shot]))
    net.fit(embedding.reshape(-1, embedding.shape[-1]))
    images, labels = load(test), torch.tensor([r.label for r in test])
    scores = torch.cat([net(chunk).pred_score for chunk in images.split(16)])
    return 100 * auroc(scores, labels)


def headroom_table(size: str = "small", weights: str = "lite0", root: Path | None = None) -> tuple[str, bool]:
    """(markdown, passed): the one-shot image AUROC per category (mean and each draw) and the gate."""
    low, high = HEADROOM
    with tempfile.TemporaryDirectory() as scratch:
        folder = root or Path(scratch) / "mvtec"
        if not folder.is_dir():
            write_mvtec_standin(folder, size=size)
        rows, passed = [], True
        for category in SIZES[size][0]:
            values = [one_shot_auroc(folder / category, weights, draw) for draw in DRAWS]
            mean = float(np.mean(values))
            ok = low <= mean <= high
            passed &= ok
            each = ", ".join(f"{v:.1f}" for v in values)
            rows.append(f"| {category} | {mean:.1f} | {each} | {'pass' if ok else 'FAIL'} |")
    header = [
        f"One-shot PatchCore score on frozen {SHORT_NAMES[weights]} (ImageNet) features, image AUROC (%), "
        f"draws {', '.join(map(str, DRAWS))}; gate: every category in [{low:g}, {high:g}]",
        "",
        "| category | mean | each draw | gate |",
        "|---|---:|---|---|",
    ]
    return "\n".join(header + rows) + "\n", passed
