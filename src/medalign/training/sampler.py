"""Deterministic, resumable data order: a pure function of (seed, epoch, rank)."""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler


class EpochSampler(DistributedSampler):
    """Shuffles with a generator seeded by (seed, epoch) and shards across ranks.

    Yields ``(epoch, index)`` so the dataset can seed augmentation per sample. Each rank gets
    the same number of samples (the tail is dropped, as contrastive batches must match in
    size across ranks). After `skip`, the next epoch started at that epoch omits the samples
    already consumed, which makes a mid-epoch resume continue exactly. It subclasses
    `DistributedSampler` only so Lightning keeps it instead of injecting its own.

    Args:
        length: dataset size.
        seed: shuffle seed.
        num_replicas: world size.
        rank: this process's rank.
        shuffle: shuffle (train) or keep order.
    """

    def __init__(self, length: int, seed: int = 0, num_replicas: int = 1, rank: int = 0, shuffle: bool = True) -> None:
        super().__init__(range(length), num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.length = length
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.shuffle = shuffle
        self.epoch = 0
        self.num_samples = length // num_replicas
        self._skip: tuple[int, int] | None = None  # (epoch, samples to skip)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip(self, epoch: int, samples: int) -> None:
        """Omit the first `samples` of this rank's share when `epoch` is next iterated."""
        self._skip = (epoch, samples)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.length, generator=generator)
        else:
            order = torch.arange(self.length)
        mine = order[self.rank : self.num_samples * self.num_replicas : self.num_replicas].tolist()
        start = 0
        if self._skip is not None and self._skip[0] == self.epoch:
            start = min(self._skip[1], len(mine))
        self._skip = None
        for index in mine[start:]:
            yield self.epoch, index


class OversampledEpochSampler(EpochSampler):
    """An `EpochSampler` over a small subset (e.g. the expert-annotated rows), repeated to fill an epoch.

    Each rank yields exactly `samples_per_rank` keys per epoch, drawn from back-to-back
    permutations of the subset seeded by (seed, epoch, repetition), dealt across ranks.
    Sized to the main stream (main batches × sub-batch size) the two loaders stay in step,
    so the expert batch at any step is a pure function of (seed, epoch, step) and resumes
    exactly with the same `skip`. Keys are ``(epoch * REPEATS + repetition, index)`` so a row
    repeated within an epoch gets a fresh random crop each time.

    With `use_batch`, the keys of a batch that will not be used are replaced by None (a
    `StepGatedDataset` then loads nothing for them): the draws stay where they were, so the
    used batches are exactly those of the ungated stream, on every rank and after a resume.

    Args:
        length: subset size.
        samples_per_rank: keys each rank yields per epoch.
        seed: shuffle seed.
        num_replicas: world size.
        rank: this process's rank.
        batch_size: keys per batch, to know which batch a key belongs to (with `use_batch`).
        use_batch: ``(epoch, batch index in the epoch) → bool``; None = every batch is used.
    """

    REPEATS = 100_003  # > repetitions of the subset per epoch

    def __init__(
        self,
        length: int,
        samples_per_rank: int,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        batch_size: int = 1,
        use_batch: Callable[[int, int], bool] | None = None,
    ) -> None:
        if length < 1:
            raise ValueError("OversampledEpochSampler needs at least one row")
        super().__init__(length, seed=seed, num_replicas=num_replicas, rank=rank)
        self.num_samples = samples_per_rank
        self.batch_size = batch_size
        self.use_batch = use_batch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        total = self.num_samples * self.num_replicas
        repeats = math.ceil(total / self.length)
        if repeats >= self.REPEATS:
            raise ValueError(f"{repeats} repetitions of {self.length} rows per epoch exceed {self.REPEATS}")
        keys: list[tuple[int, int]] = []
        for repetition in range(repeats):
            generator = torch.Generator().manual_seed((self.seed * 100_003 + self.epoch) * self.REPEATS + repetition)
            key_epoch = self.epoch * self.REPEATS + repetition
            keys.extend((key_epoch, i) for i in torch.randperm(self.length, generator=generator).tolist())
        mine = keys[self.rank : total : self.num_replicas]
        start = 0
        if self._skip is not None and self._skip[0] == self.epoch:
            start = min(self._skip[1], len(mine))
        self._skip = None
        if self.use_batch is None:
            yield from mine[start:]
            return
        used: dict[int, bool] = {}  # batch index in the epoch → decision, asked once per batch
        for position in range(start, len(mine)):
            batch = position // self.batch_size
            if batch not in used:
                used = {batch: bool(self.use_batch(self.epoch, batch))}
            yield mine[position] if used[batch] else None


class StepGatedDataset(Dataset):
    """Wraps a dataset so that the None keys of `OversampledEpochSampler(use_batch=...)` load nothing.

    A batch of None keys becomes an empty sample list (no file is read or decoded), which
    `GatedCollate` turns into a None batch; other batches load as `dataset` would.

    Args:
        dataset: the wrapped dataset (`ImageTextDataset` or a subclass).
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: Any) -> Any:
        return None if key is None else self.dataset[key]

    def __getitems__(self, keys: list[Any]) -> list[Any]:
        skipped = sum(k is None for k in keys)
        if skipped == len(keys):
            return []
        if skipped:
            raise RuntimeError(f"a batch mixes {skipped} skipped and {len(keys) - skipped} loaded keys; "
                               "the gated sampler's batch_size must be the loader's")
        return self.dataset.__getitems__(keys) if hasattr(self.dataset, "__getitems__") else [self.dataset[k] for k in keys]


class GatedCollate:
    """A collate function returning None for the empty sample list of a skipped batch (picklable for workers).

    Args:
        collate: the collate function of loaded batches.
    """

    def __init__(self, collate: Callable[[list[Any]], Any]) -> None:
        self.collate = collate

    def __call__(self, samples: list[Any]) -> Any:
        return self.collate(samples) if samples else None


class ResumableDataLoader(DataLoader):
    """A DataLoader over an `EpochSampler` that Lightning checkpoints and restores.

    Lightning saves `state_dict()` of every stateful train loader in its checkpoint and feeds it
    back to `load_state_dict()` on resume. The state is the epoch and the number of batches
    the trainer finished in it (read through `progress`, because the loader itself runs ahead
    of the trainer by its prefetch).

    Args:
        progress: returns (epoch, batches completed in that epoch); set by the DataModule.
    """

    def __init__(self, *args: Any, progress: Callable[[], tuple[int, int]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.sampler, EpochSampler):
            raise TypeError("ResumableDataLoader needs an EpochSampler")
        self.progress = progress

    def state_dict(self) -> dict[str, int]:
        epoch, batches = self.progress() if self.progress else (self.sampler.epoch, 0)
        return {"epoch": epoch, "batches": batches, "batch_size": self.batch_size or 1}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue where the state left off: the rest of its epoch, or the next epoch from its start.

        The sampler's epoch is restored here too, not left to Lightning's ``set_epoch``: on resume
        Lightning creates the loader's iterator before it sets the epoch, and loader workers
        prefetch at once, so an unset epoch would replay epoch 0's order (and skip nothing).
        """
        samples = state["batches"] * state["batch_size"]
        if samples < len(self.sampler):
            self.sampler.set_epoch(state["epoch"])
            self.sampler.skip(state["epoch"], samples)
        else:  # the epoch was finished
            self.sampler.set_epoch(state["epoch"] + 1)


def num_batches(samples: int, batch_size: int, drop_last: bool) -> int:
    return samples // batch_size if drop_last else math.ceil(samples / batch_size)
