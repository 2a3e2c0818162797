"""Can a frozen ImageNet network already tell the ForenSynths stand-in's unseen families apart? (``check_standin.py
--probe lite0``)

The pretrained-regime claims ask whether BiHPF, FrePGAN or FingerprintNet raise the AP on generator families
unseen in training over CNNDetection, all fine-tuned from ImageNet weights. If a linear probe on frozen ImageNet
features, fitted on the seen family alone, already reached near 100 % AP on every unseen family, every detector
would be there too and the claims could not tell the methods apart. Training-free for the network (no step of
it is trained): its pooled features of every image, then one logistic regression (scikit-learn) on the seen
family's reals and fakes, scored on each family's test images. Passes when the probe's mean AP over the unseen
families stays at or below ``PROBE_LIMIT``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lightning_modules.components.backbones import Normalize, create_backbone
from lightning_modules.components.packaged_weights import SHORT_NAMES
from lightning_modules.metrics.detection import binary_scores

PROBE_LIMIT = 95.0  # mean AP (%) over the unseen families above which the claims could not discriminate


@torch.no_grad()
def frozen_features(images: torch.Tensor, backbone: str, image_size: int, batch: int = 64) -> np.ndarray:
    """Pooled features of [0, 1] ``images`` (N, 3, H, W) resized to ``image_size``, from the packaged ImageNet
    ``backbone`` with its own input normalization."""
    model = create_backbone(backbone, pretrained=True, num_classes=0).eval()
    normalize = Normalize.of_backbone(model)
    rows = []
    for chunk in images.split(batch):
        resized = F.interpolate(chunk, size=image_size, mode="bilinear", align_corners=False, antialias=True)
        rows.append(model(normalize(resized)).float().numpy())
    return np.concatenate(rows)


def probe_table(
    train: tuple[torch.Tensor, torch.Tensor],
    tests: dict[str, tuple[torch.Tensor, torch.Tensor]],
    seen: str,
    controls: tuple[str, ...],
    weights: str = "lite0",
    image_size: int = 112,
) -> tuple[str, bool]:
    """(markdown, passed): the probe's ACC / AP per test group, fitted on ``train`` (the seen family's images and
    labels), and the gate on the mean AP over the unseen families (not ``seen``, not a control)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    backbone = SHORT_NAMES[weights]
    features = frozen_features(train[0], backbone, image_size)
    scaler = StandardScaler().fit(features)
    probe = LogisticRegression(C=1.0, max_iter=2000).fit(scaler.transform(features), train[1].numpy())
    cells, unseen = [], []
    for name, (images, labels) in tests.items():
        scores = probe.predict_proba(scaler.transform(frozen_features(images, backbone, image_size)))[:, 1]
        found = binary_scores(torch.from_numpy(scores).float(), labels.long())
        cells.append(f"{100 * found['acc']:.0f} / {100 * found['ap']:.0f}")
        if name != seen and name not in controls:
            unseen.append(100 * found["ap"])
    mean_unseen = float(np.mean(unseen))
    passed = mean_unseen <= PROBE_LIMIT
    verdict = f"mean unseen AP {mean_unseen:.1f} <= {PROBE_LIMIT:g}: {'pass' if passed else 'FAIL'}"
    header = (
        f"| frozen {backbone} at {image_size} px + linear probe on {seen} | "
        + " | ".join(tests)
        + " | gate |"
    )
    table = header + "\n|---|" + "---:|" * len(tests) + "---|\n"
    table += "| ACC / AP (%) | " + " | ".join(cells) + f" | {verdict} |"
    return table, passed
