"""PatchCore (Roth et al., CVPR 2022): a memory bank of locally aggregated mid-level patch features of normal
images, thinned by greedy coreset selection; a test patch's anomaly score is its distance to the nearest bank
entry, and the image's score is its most anomalous patch's, re-weighted by how isolated its nearest entry is.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange

from lightning_modules.components.anomaly_output import AnomalyOutput
from lightning_modules.components.feature_extractor import FrozenFeatures, smooth_map
from lightning_modules.components.resizable_buffers import ResizableBuffersMixin


def euclidean_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(len(a), len(b)) Euclidean distances by |a|^2 - 2 a.b + |b|^2, the matrix-product form ``torch.cdist``
    itself takes for more than 25 rows; written out because ONNX has no ``cdist`` (scripts/export.py)."""
    squared = a.square().sum(1, keepdim=True) - 2 * a @ b.T + b.square().sum(1)[None]
    return squared.clamp_min(0).sqrt()


def nearest_neighbors(
    queries: torch.Tensor, bank: torch.Tensor, k: int = 1, max_elements: int = 1 << 24
) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean distances (Q, k) and indices (Q, k) of each query's ``k`` nearest bank rows, ascending.

    Queries and bank are cut into blocks so that no distance matrix holds more than ``max_elements`` entries:
    memory stays bounded whatever the bank size (a real MVTec bank holds ~10^5 patches). While exported, the
    queries stay one block: their number follows the batch size, which an exported graph leaves open.
    """
    k = min(k, len(bank))
    bank_block = max(1, min(len(bank), max_elements // 64))
    query_block = max(1, max_elements // bank_block)
    all_distances, all_indices = [], []
    blocks = [queries] if torch.compiler.is_exporting() else queries.split(query_block)
    for query in blocks:
        best_d, best_i = None, None  # the k nearest so far (no empty start: its size would pin the batch)
        for start in range(0, len(bank), bank_block):
            distances = euclidean_distances(query, bank[start : start + bank_block])
            d, i = distances.topk(min(k, distances.shape[1]), dim=1, largest=False)
            i = i + start
            if best_d is not None:
                d, order = torch.cat([best_d, d], 1).topk(
                    min(k, best_d.shape[1] + d.shape[1]), 1, largest=False
                )
                i = torch.cat([best_i, i], 1).gather(1, order)
            best_d, best_i = d, i
        all_distances.append(best_d)
        all_indices.append(best_i)
    return torch.cat(all_distances), torch.cat(all_indices)


def greedy_coreset(
    features: torch.Tensor, ratio: float, projection_dim: int | None = 128, seed: int = 0
) -> torch.Tensor:
    """Indices of ``max(1, round(ratio * N))`` rows chosen by greedy k-center (farthest-point) selection.

    Starting from one random row, each step adds the row farthest from everything chosen so far, so the chosen
    rows cover the set with a small maximum distance. Distances are computed on a Gaussian random projection to
    ``projection_dim`` dimensions (Johnson-Lindenstrauss; null: the full features), as the paper does for speed.
    """
    if not 0 < ratio <= 1:
        raise ValueError(f"coreset ratio must be in (0, 1], got {ratio}")
    count = max(1, round(ratio * len(features)))
    if count >= len(features):
        return torch.arange(len(features), device=features.device)
    generator = torch.Generator().manual_seed(seed)
    points = features.float()
    if projection_dim and points.shape[1] > projection_dim:
        projection = torch.randn(points.shape[1], projection_dim, generator=generator) / projection_dim**0.5
        points = points @ projection.to(points.device)
    chosen = torch.empty(count, dtype=torch.long, device=points.device)
    chosen[0] = int(torch.randint(len(points), (1,), generator=generator))
    distance = (points - points[chosen[0]]).norm(dim=1)
    for step in range(1, count):
        chosen[step] = distance.argmax()
        distance = torch.minimum(distance, (points - points[chosen[step]]).norm(dim=1))
    return chosen


class PatchCoreNet(ResizableBuffersMixin):
    """Patch embedding, memory bank and scoring.

    Args:
        backbone: timm CNN (frozen).
        layers: timm feature indices whose maps are aggregated (ResNets: 2, 3 = layer2, layer3).
        pretrained / pretrained_path: ImageNet weights for the backbone (see ``create_backbone``).
        neighborhood: Side of the local average pooling that aggregates each feature with its neighbors.
        coreset_ratio: Share of the training patches kept in the memory bank.
        projection_dim: Random-projection size for the coreset distances (null: none).
        num_neighbors: Bank entries around the nearest one that re-weight the image score (1: no re-weighting).
        blur_sigma: Gaussian smoothing of the up-sampled anomaly map, in pixels.
        max_elements: Largest distance matrix of the nearest-neighbor search (bounds memory).
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        layers: Sequence[int] = (2, 3),
        pretrained: bool = True,
        pretrained_path: str | None = None,
        neighborhood: int = 3,
        coreset_ratio: float = 0.1,
        projection_dim: int | None = 128,
        num_neighbors: int = 9,
        blur_sigma: float = 4.0,
        max_elements: int = 1 << 24,
    ) -> None:
        super().__init__()
        self.features = FrozenFeatures(backbone, layers, pretrained, pretrained_path)
        self.neighborhood = neighborhood
        self.coreset_ratio = coreset_ratio
        self.projection_dim = projection_dim
        self.num_neighbors = num_neighbors
        self.blur_sigma = blur_sigma
        self.max_elements = max_elements
        self.register_buffer("memory_bank", torch.empty(0, sum(self.features.channels)))

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, h, w, D) patch features at the first layer's resolution."""
        maps = self.features(images)
        size = maps[0].shape[-2:]
        pooled = [F.avg_pool2d(m, self.neighborhood, 1, self.neighborhood // 2) for m in maps]
        pooled = [p if p.shape[-2:] == size else F.interpolate(p, size=size, mode="bilinear") for p in pooled]
        return rearrange(torch.cat(pooled, dim=1), "b d h w -> b h w d")

    def fit(self, embeddings: torch.Tensor, seed: int = 0) -> None:
        """Keep the coreset of ``embeddings`` (N, D) as the memory bank."""
        chosen = greedy_coreset(embeddings, self.coreset_ratio, self.projection_dim, seed)
        self.memory_bank = embeddings[chosen].to(self.memory_bank.device, torch.float32).contiguous()

    resizable_buffers = ("memory_bank",)  # its size is known only after fitting

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> AnomalyOutput:
        """Anomaly maps (B, 1, H, W) and image scores (B,)."""
        if not len(self.memory_bank):
            raise RuntimeError(
                "PatchCore has an empty memory bank: run fit (or load a fitted checkpoint) first"
            )
        embedding = self.embed(images).float()
        batch, h, w, dim = embedding.shape
        patches = embedding.reshape(-1, dim)
        distance, nearest = nearest_neighbors(patches, self.memory_bank, 1, self.max_elements)
        patch_scores = distance[:, 0].reshape(batch, h * w)
        image_scores = self.image_scores(
            patch_scores, patches.reshape(batch, h * w, dim), nearest[:, 0].reshape(batch, -1)
        )
        maps = smooth_map(patch_scores.reshape(batch, 1, h, w), tuple(images.shape[-2:]), self.blur_sigma)
        return AnomalyOutput(anomaly_map=maps, pred_score=image_scores)

    def image_scores(
        self, patch_scores: torch.Tensor, patches: torch.Tensor, nearest: torch.Tensor
    ) -> torch.Tensor:
        """The largest patch score s* per image, times 1 - softmax weight of its nearest bank entry m* among
        m*'s ``num_neighbors`` nearest bank entries (the paper's eq. 7): s* counts less when m* sits in a dense
        part of the bank, where nearby normal entries are almost as close."""
        worst = patch_scores.argmax(
            dim=1, keepdim=True
        )  # gathers, not arange indexing: any batch size exports
        score = patch_scores.gather(1, worst)[:, 0]
        if self.num_neighbors <= 1:
            return score
        anchor = self.memory_bank[nearest.gather(1, worst)[:, 0]]
        _, support = nearest_neighbors(anchor, self.memory_bank, self.num_neighbors, self.max_elements)
        worst_patch = patches.gather(1, worst[:, :, None].expand(-1, 1, patches.shape[-1]))
        distances = (worst_patch - self.memory_bank[support]).norm(dim=-1)
        return (1 - distances.softmax(dim=1)[:, 0]) * score
