"""Augmentation that repeats exactly: a training epoch's order and every sample's albumentations seed from one
number the epoch draws from torch's global generator (which checkpoints restore), whichever worker reads it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Sampler


class SeededIndex(NamedTuple):
    """A sample's index with the seed of its augmentation (what :class:`EpochSeededSampler` yields)."""

    index: int
    seed: int


def sample_seed(epoch_seed: int, index: int) -> int:
    """The augmentation seed of sample ``index`` in the epoch whose draw was ``epoch_seed``: a hash of the two."""
    return int(
        np.random.SeedSequence([epoch_seed % 2**32, epoch_seed // 2**32 % 2**32, index]).generate_state(1)[0]
    )


class EpochSeededSampler(Sampler):
    """A training epoch's order, and each sample's augmentation seed, from one number the epoch draws from torch's
    global generator when its iteration starts (as ``RandomSampler`` draws its permutation's seed): the
    permutation comes from it, and a sample of a dataset that augments (:class:`ReseededTransformMixin`) comes as
    a :class:`SeededIndex` with a seed hashed from it and the index. The global generator's state is what a
    checkpoint restores (``callbacks/rng_state.py``), so a run killed and resumed draws the same number for the
    epoch it repeats: the same images in the same order, augmented the same way by whichever worker reads them,
    whether the workers were there already (persistent) or are new."""

    def __init__(self, size: int, shuffle: bool, seeded: bool) -> None:
        self.size, self.shuffle, self.seeded = size, shuffle, seeded

    def __iter__(self):
        epoch_seed = int(torch.empty((), dtype=torch.int64).random_().item())
        order = range(self.size)
        if self.shuffle:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(epoch_seed)).tolist()
        for index in order:
            yield SeededIndex(index, sample_seed(epoch_seed, index)) if self.seeded else index

    def __len__(self) -> int:
        return self.size


class ReseededTransformMixin:
    """albumentations 2 keeps its own random state, independent of torch's. A training sample comes with its own
    seed (:class:`EpochSeededSampler`) and the transform is seeded from it; any other read re-seeds the transform
    from ``torch.initial_seed()`` whenever that changes (a new worker), so augmentation follows
    ``seed_everything``. A dataset calls :meth:`seeded` on the index it is given."""

    transform: Callable[..., dict[str, Any]]
    extra_transforms: tuple[Callable[..., dict[str, Any]], ...] = ()  # reseeded too, each from its own offset
    _seeded_from: int | None = None

    def seeded(self, index: int | SeededIndex) -> int:
        """The plain index; the transform seeded for it first."""
        if isinstance(index, SeededIndex):
            self._seed_transforms(index.seed)
            self._seeded_from = None  # a later unseeded read re-seeds from torch again
            return index.index
        self._reseed_transform()
        return index

    def _seed_transforms(self, seed: int) -> None:
        if hasattr(self.transform, "set_random_seed"):
            self.transform.set_random_seed(seed)
            for offset, transform in enumerate(self.extra_transforms, start=1):
                transform.set_random_seed((seed + offset) % 2**32)

    def _reseed_transform(self) -> None:
        seed = torch.initial_seed() % 2**32
        if seed != self._seeded_from:
            self._seed_transforms(seed)
            self._seeded_from = seed
