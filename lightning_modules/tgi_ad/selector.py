"""The text-guided selector: which generated images to keep.

Score of a candidate (our reading of the paper, README.md): w · cos(CLIP image embedding, the chosen prompts' mean
text embedding) + γ · cos(CLIP image embedding, its source image's embedding), w = 1 (the paper's score); w = 0
(``text_weight``) drops the text term, for a scorer measured not to tell the category's images from others'.
Candidates far from the rest (distance to the candidates' mean embedding above mean + z·std) are rejected first as
outliers; then the best ``keep`` are kept. Generation and selection iterate for a configurable number of rounds
(the generation step).

With the sources given, the kept images are spread over them: at most ⌈keep / sources⌉ from each, the best of
each source first. A global top-``keep`` keeps almost every image from one source when the candidates of a
source are near-copies of each other (their scores then differ by source, not by sample): with four few-shot
sources it kept 186-200 of 200 from one. The score's source term also rewards copies, and with the random CLIP
stand-in its text term is noise, so the module sets γ to 0 there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def selection_scores(
    candidates: torch.Tensor,
    prompt: torch.Tensor,
    sources: torch.Tensor,
    gamma: float = 0.5,
    text_weight: float = 1.0,
) -> torch.Tensor:
    """(N,) scores of candidate embeddings (N, D) against the prompt embedding (D,) and each one's source (N, D)."""
    candidates = F.normalize(candidates.float(), dim=-1)
    text = F.normalize(prompt.float(), dim=-1)
    source = (candidates * F.normalize(sources.float(), dim=-1)).sum(-1)
    return text_weight * (candidates @ text) + gamma * source


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
    source_index: torch.Tensor | None = None,
    text_weight: float = 1.0,
) -> torch.Tensor:
    """Indices of exactly ``keep`` candidates, best first: the top scores among the non-outliers (outliers only
    when too few others are left). ``source_index`` (N,), each candidate's source: a quota of ⌈keep / sources⌉
    per source (a source with fewer candidates gives what it has and the others fill up); ``text_weight`` scales the
    text term (0: the source term alone)."""
    if not 0 < keep <= len(candidates):
        raise ValueError(f"cannot keep {keep} of {len(candidates)} generated images")
    scores = selection_scores(candidates, prompt, sources, gamma, text_weight)
    rejected = outliers(candidates, outlier_z)
    ranked = scores - 1e6 * rejected.float()  # outliers last
    order = torch.argsort(ranked, descending=True)
    if source_index is None:
        return order[:keep]
    if len(source_index) != len(candidates):
        raise ValueError(f"source_index has {len(source_index)} entries for {len(candidates)} candidates")
    # rank of each candidate within its source (0 = that source's best): the quota keeps ranks below it
    within = torch.empty_like(order)
    for source in source_index.unique():
        members = order[source_index[order] == source]
        within[members] = torch.arange(len(members))
    quota = -(-keep // len(source_index.unique()))
    while int((within < quota).sum()) < keep:  # small sources: the others fill up
        quota += 1
    allowed = order[within[order] < quota]
    return allowed[:keep]


def per_source_counts(chosen: torch.Tensor, source_index: torch.Tensor, sources: int) -> list[int]:
    """How many of the ``chosen`` candidates came from each of the ``sources`` (for generation.json)."""
    return torch.bincount(source_index[chosen], minlength=sources).tolist()
