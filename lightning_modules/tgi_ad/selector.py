"""The text-guided selector: which generated images to keep.

Score of a candidate (our reading of the paper, README.md): cos(CLIP image embedding, the chosen prompts' mean
text embedding) + γ · cos(CLIP image embedding, its source image's embedding). Candidates far from the rest
(distance to the candidates' mean embedding above mean + z·std) are rejected first as outliers; then the best
``keep`` are kept. Generation and selection iterate for a configurable number of rounds (the generation step).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def selection_scores(
    candidates: torch.Tensor, prompt: torch.Tensor, sources: torch.Tensor, gamma: float = 0.5
) -> torch.Tensor:
    """(N,) scores of candidate embeddings (N, D) against the prompt embedding (D,) and each one's source (N, D)."""
    candidates = F.normalize(candidates.float(), dim=-1)
    text = F.normalize(prompt.float(), dim=-1)
    return candidates @ text + gamma * (candidates * F.normalize(sources.float(), dim=-1)).sum(-1)


def outliers(candidates: torch.Tensor, z: float | None = 3.0) -> torch.Tensor:
    """(N,) bool: embeddings whose distance to the mean embedding exceeds mean + z std of those distances."""
    if z is None or len(candidates) < 3:
        return torch.zeros(len(candidates), dtype=torch.bool)
    normalized = F.normalize(candidates.float(), dim=-1)
    distance = (normalized - normalized.mean(0)).norm(dim=-1)
    return distance > distance.mean() + z * distance.std()


def select(
    candidates: torch.Tensor,
    prompt: torch.Tensor,
    sources: torch.Tensor,
    keep: int,
    gamma: float = 0.5,
    outlier_z: float | None = 3.0,
) -> torch.Tensor:
    """Indices of exactly ``keep`` candidates, best first: the top scores among the non-outliers (outliers only
    when too few others are left)."""
    if not 0 < keep <= len(candidates):
        raise ValueError(f"cannot keep {keep} of {len(candidates)} generated images")
    scores = selection_scores(candidates, prompt, sources, gamma)
    rejected = outliers(candidates, outlier_z)
    order = torch.argsort(scores - 1e6 * rejected.float(), descending=True)  # outliers last
    return order[:keep]
