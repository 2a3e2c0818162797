"""How varied the generated images are, and how far from their source (the one-shot pitfall: "copying the
source image": one-shot generation can return its input, which adds nothing to a baseline's training set).

The distance is LPIPS's form without its learnt weights: per layer of a frozen CNN, unit-normalize each position's
channel vector, take the squared difference summed over channels and averaged over positions, and sum over
layers. LPIPS proper needs ImageNet-trained AlexNet / VGG weights that cannot be fetched offline; through the
generator's feature network (a random ResNet-18 offline, ImageNet's with ``pretrained``) the numbers compare runs
with each other, not with published LPIPS values.

The gate a generation must pass before its images can be said to add normal variety (``diversity_gate``): the
spread between samples of one source at least ``min_spread`` (0.3) of the spread between different real normals,
and their sharpness (the variance of the Laplacian, the usual blur measure) within ``sharpness_tolerance`` (20 %)
of the reals'. Blurred near-copies of the source, the failure that made baselines learn "blurred = normal", fail
both. The sharpness is read at ``sharpness_scale`` x coarser resolution (2: half; 1: full, the first gate): at
full resolution the variance of the Laplacian halves when a real image is merely rotated or rescaled by a few
degrees or percent (resampling removes the finest scale), so the first gate failed the classical augmentation
control too and could not tell a useless generation from a useful one; a blur of a pixel or more still removes
the half-resolution detail.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def perceptual_distance(maps_a: list[torch.Tensor], maps_b: list[torch.Tensor]) -> torch.Tensor:
    """(N,) distances between the N image pairs whose feature maps (each (N, C, h, w) per layer) are given."""
    return sum(
        ((F.normalize(a.float(), dim=1) - F.normalize(b.float(), dim=1)) ** 2).sum(1).mean((1, 2))
        for a, b in zip(maps_a, maps_b, strict=True)
    )


@torch.no_grad()
def generation_diversity(
    features: Callable[[torch.Tensor], list[torch.Tensor]],
    kept: torch.Tensor,
    kept_sources: torch.Tensor,
    normals: torch.Tensor,
    max_per_source: int = 8,
) -> dict[str, float]:
    """``diversity``: mean distance between kept images drawn from the same source (up to ``max_per_source`` of
    each, every pair); ``source_distance``: mean distance of each kept image to its source; ``normal_diversity``:
    mean distance between different real normals (the scale to read the two against; nan with one normal).
    ``kept_sources[i]`` is the index in ``normals`` of ``kept[i]``'s source."""
    kept_maps, normal_maps = features(kept), features(normals)
    to_source = perceptual_distance(kept_maps, [m[kept_sources] for m in normal_maps])
    pairs = []
    for source in kept_sources.unique():
        members = (kept_sources == source).nonzero().flatten()[:max_per_source]
        pairs += torch.combinations(members, 2).tolist() if len(members) > 1 else []
    result = {
        "source_distance": float(to_source.mean()),
        "diversity": float("nan"),
        "normal_diversity": float("nan"),
    }
    if pairs:
        first, second = torch.tensor(pairs).T
        result["diversity"] = float(
            perceptual_distance([m[first] for m in kept_maps], [m[second] for m in kept_maps]).mean()
        )
    if len(normals) > 1:
        first, second = torch.combinations(torch.arange(len(normals)), 2).T
        result["normal_diversity"] = float(
            perceptual_distance([m[first] for m in normal_maps], [m[second] for m in normal_maps]).mean()
        )
    return result


LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def sharpness(images: torch.Tensor, scale: int = 1) -> torch.Tensor:
    """(N,) variance of the Laplacian of each image's gray level ((N, 3, H, W) in [0, 1]) after an antialiased
    downsampling by ``scale`` (1: none): low for blurred images."""
    gray = images.float().mean(1, keepdim=True)
    if scale > 1:
        gray = F.interpolate(
            gray, scale_factor=1 / scale, mode="bilinear", antialias=True, align_corners=False
        )
    response = F.conv2d(gray, LAPLACIAN.to(gray)[None, None])
    return response.flatten(1).var(1)


def diversity_gate(
    diversity: dict[str, float],
    kept: torch.Tensor,
    normals: torch.Tensor,
    min_spread: float = 0.3,
    sharpness_tolerance: float = 0.2,
    sharpness_scale: int = 2,
) -> dict[str, float | bool | str]:
    """The spread ratio (``diversity`` / ``normal_diversity`` of :func:`generation_diversity`), the sharpness
    ratio (kept / real normals, means of :func:`sharpness`) and whether both pass; with one real normal there is
    no spread to compare with, which the verdict says."""
    spread = diversity["diversity"] / diversity["normal_diversity"]
    ratio = float(
        sharpness(kept, sharpness_scale).mean() / sharpness(normals, sharpness_scale).mean().clamp_min(1e-12)
    )
    sharp_ok = abs(ratio - 1) <= sharpness_tolerance
    if spread != spread:  # nan: one real normal (or one sample per source)
        verdict = "not judged: one real normal gives no spread to compare with"
        passes = False
    else:
        passes = spread >= min_spread and sharp_ok
        verdict = "passes" if passes else "fails"
    return {
        "spread_ratio": spread,
        "sharpness_ratio": ratio,
        "gate_passes": passes,
        "gate": f"{verdict} (spread ratio >= {min_spread:g}, sharpness within {sharpness_tolerance:.0%} of the "
        f"reals'{' at 1/' + str(sharpness_scale) + ' resolution' if sharpness_scale > 1 else ''})",
    }
