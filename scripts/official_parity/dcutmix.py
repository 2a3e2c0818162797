"""K-image mixing beside clovaai/DCutMix: labels against the pixels actually visible, the mixing proportions'
distribution, and PyramidNet-110 with copied weights."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import ks_2samp

from lightning_modules.components.cifar_networks import cifar_pyramidnet110_a64
from lightning_modules.components.mixing import k_image_mix

from .loading import load_definitions, load_module, restore_numpy_aliases

SETTINGS = [
    ("dcutmix", 3, 1 / 3),
    ("dcutmix", 5, 0.2),
    ("dcutmix", 5, 1.0),
    ("dmixup", 3, 1 / 3),
    ("dmixup", 5, 0.2),
]


def official_mixer(official: Path, k: int, classes: int):
    restore_numpy_aliases()
    namespace = {"np": np, "torch": torch, "args": SimpleNamespace(trial=k, num_classes=classes)}
    return load_definitions(
        official / "main.py", ["get_dirichlet_prior", "rand_bbox", "joint_dirichlet"], namespace
    )


def probe_images(batch: int, size: int, mode: str) -> torch.Tensor:
    """CutMix: image b painted b + 1; mixup: image b one-hot in channel b, so pixels tell each source's share."""
    if mode == "dcutmix":
        return (
            (torch.arange(batch, dtype=torch.float32) + 1)
            .view(batch, 1, 1, 1)
            .expand(batch, 1, size, size)
            .clone()
        )
    return torch.eye(batch).view(batch, batch, 1, 1).expand(batch, batch, size, size).clone()


def pixel_shares(mixed: torch.Tensor, mode: str) -> torch.Tensor:
    batch = len(mixed)
    if mode == "dcutmix":
        values = mixed[:, 0].round().long() - 1
        return F.one_hot(values.flatten(1), batch).float().mean(1)
    return mixed.mean((2, 3))


def run_both(official: Path, mode: str, k: int, alpha: float, batch: int, size: int, seed: int):
    """(official targets, our targets, official pixel shares, our pixel shares) of one probe batch."""
    np.random.seed(seed)
    torch.manual_seed(seed)
    labels = torch.arange(batch)  # one class per source image: a target row is the sources' shares
    images = probe_images(batch, size, mode)
    ns = official_mixer(official, k, batch)
    phis = ns["get_dirichlet_prior"](batch, k, alpha_label=alpha)
    mixed_off, target_off = ns["joint_dirichlet"](images, labels, phis.numpy(), 1.0, mode=mode)
    generator = torch.Generator().manual_seed(seed)
    ours_mode = "cutmix" if mode == "dcutmix" else "mixup"
    mixed_ours, target_ours = k_image_mix(images, labels, batch, k, alpha, ours_mode, generator)
    return (
        target_off.float(),
        target_ours.float(),
        pixel_shares(mixed_off, mode),
        pixel_shares(mixed_ours, mode),
    )


def compare(official: Path, samples: int = 4000, batch: int = 16, size: int = 32) -> list[str]:
    lines = [
        "| mode, K, alpha | max abs(target - visible share): official / ours | anchor share mean: official / ours "
        "| mean sorted shares: official / ours | KS D (p) of the anchor share |",
        "|---|---:|---:|---|---:|",
    ]
    for mode, k, alpha in SETTINGS:
        off_t, our_t, gaps = [], [], [0.0, 0.0]
        for seed in range(samples // batch):
            t_off, t_ours, s_off, s_ours = run_both(official, mode, k, alpha, batch, size, seed)
            gaps = [
                max(gaps[0], float((t_off - s_off).abs().max())),
                max(gaps[1], float((t_ours - s_ours).abs().max())),
            ]
            off_t.append(t_off)
            our_t.append(t_ours)
        off_t, our_t = torch.cat(off_t), torch.cat(our_t)
        anchor_off, anchor_ours = _anchor(off_t, batch), _anchor(our_t, batch)
        sorted_off = off_t.sort(1, descending=True).values[:, :k].mean(0).tolist()
        sorted_ours = our_t.sort(1, descending=True).values[:, :k].mean(0).tolist()
        test = ks_2samp(anchor_off.numpy(), anchor_ours.numpy())
        lines.append(
            f"| {mode}, {k}, {alpha:.3g} | {gaps[0]:.1e} / {gaps[1]:.1e} | {anchor_off.mean():.3f} / {anchor_ours.mean():.3f} "
            f"| {_fmt(sorted_off)} / {_fmt(sorted_ours)} | {test.statistic:.3f} ({test.pvalue:.2f}) |"
        )
    lines += ["", *pyramidnet(official)]
    return lines


def _anchor(targets: torch.Tensor, batch: int) -> torch.Tensor:
    """Each mix's anchor share: row r of a batch is image r % batch's mix, its own class r % batch."""
    rows = torch.arange(len(targets))
    return targets[rows, rows % batch]


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in values) + "]"


def pyramidnet(official: Path) -> list[str]:
    """PyramidNet-110 (alpha 64, bottleneck): parameter counts, and logits with the official weights copied."""
    models = load_module(official / "models" / "pyramidenet.py", "dcutmix_official_pyramidnet")
    theirs = models.PyramidNet(
        dataset="cifar10", depth=110, alpha=64, num_classes=100, bottleneck=True
    ).eval()
    ours = cifar_pyramidnet110_a64(num_classes=100).eval()
    count = [sum(p.numel() for p in m.parameters()) for m in (theirs, ours)]
    source, target = list(theirs.state_dict().values()), ours.state_dict()
    if len(source) == len(target) and all(
        a.shape == b.shape for a, b in zip(source, target.values(), strict=True)
    ):
        ours.load_state_dict(dict(zip(target, source, strict=True)))
        x = torch.rand(4, 3, 32, 32)
        with torch.no_grad():
            a, b = theirs(x), ours(x)
        agreement = f"{float((a - b).abs().max() / a.abs().max()):.1e}"
    else:
        agreement = "state dicts differ in layout"
    return [
        "| PyramidNet-110 (alpha 64, bottleneck), 100 classes | official | ours |",
        "|---|---:|---:|",
        f"| parameters | {count[0]:,} | {count[1]:,} |",
        f"| max relative logit difference, weights copied in state-dict order | — | {agreement} |",
    ]
