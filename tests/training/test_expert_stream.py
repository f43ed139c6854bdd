"""The eCLIP expert stream: oversampled sampler, combined loader, determinism and resume."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from lightning.pytorch.utilities import CombinedLoader

from medalign.training.datamodule import MedAlignDataModule
from medalign.training.sampler import OversampledEpochSampler, ResumableDataLoader


def test_oversampled_sampler_fills_the_epoch_evenly_and_deterministically():
    sampler = OversampledEpochSampler(7, samples_per_rank=20, seed=3)
    keys = list(sampler)
    assert len(keys) == len(sampler) == 20
    counts = Counter(i for _, i in keys)
    assert set(counts) == set(range(7)) and max(counts.values()) - min(counts.values()) <= 1  # back-to-back permutations
    assert len(set(keys)) == 20  # a repeated row gets a different key (a fresh crop)
    assert keys == list(OversampledEpochSampler(7, samples_per_rank=20, seed=3))  # same (seed, epoch) → same order
    sampler.set_epoch(1)
    assert [i for _, i in sampler] != [i for _, i in keys]
    assert [i for _, i in OversampledEpochSampler(7, 20, seed=4)] != [i for _, i in keys]


def test_oversampled_sampler_deals_one_global_order_across_ranks():
    single = [i for _, i in OversampledEpochSampler(5, samples_per_rank=12, seed=0)]
    ranks = [[i for _, i in OversampledEpochSampler(5, samples_per_rank=6, seed=0, num_replicas=2, rank=r)] for r in (0, 1)]
    interleaved = [x for pair in zip(*ranks) for x in pair]
    assert interleaved == single


def test_oversampled_sampler_skip_resumes_exactly():
    full = list(OversampledEpochSampler(5, 12, seed=1))
    resumed = OversampledEpochSampler(5, 12, seed=1)
    resumed.skip(0, 8)
    assert list(resumed) == full[8:]
    assert list(resumed) == full  # the skip applies once


def _datamodule(synthetic_dir, **kwargs) -> MedAlignDataModule:
    dm = MedAlignDataModule(
        manifest=str(synthetic_dir / "manifest.csv"), image_size=64, batch_size=16, max_length=32, num_workers=0, **kwargs
    )
    dm.setup("fit")
    return dm


def test_expert_stream_batches_only_annotated_rows_in_step_with_the_main_stream(synthetic_dir):
    dm = _datamodule(synthetic_dir, expert_stream=True)
    loader = dm.train_dataloader()
    assert isinstance(loader, CombinedLoader)
    annotated = set(dm.expert_dataset.rows.tolist())
    frame = dm.manifest.frame
    assert annotated == set(frame.index[(frame["split"] == "train") & frame["heatmap"].astype(bool)])
    batches = list(iter(loader))
    assert len(batches) == len(dm._train_loader) == len(dm._expert_loader)
    for batch, *_ in batches:
        assert set(batch) == {"main", "expert"}
        assert len(batch["main"]["index"]) == 16 and len(batch["expert"]["index"]) == dm.expert_batch_size == 8
        assert batch["expert"]["has_heatmap"].all() and set(batch["expert"]["index"].tolist()) <= annotated
        assert (batch["expert"]["heatmap"].amax(dim=(1, 2, 3)) > 0).all()


def test_expert_stream_resumes_mid_epoch_with_the_main_stream(synthetic_dir):
    def indices(dm, state=None):
        if state is not None:
            dm.load_state_dict(state)
        loader = dm.train_dataloader()
        return [(b["main"]["index"].tolist(), b["expert"]["index"].tolist()) for b, *_ in loader]

    full = indices(_datamodule(synthetic_dir, expert_stream=True))
    state = {"epoch": 0, "batches": 3, "batch_size": 16}
    assert indices(_datamodule(synthetic_dir, expert_stream=True), state) == full[3:]


def test_plain_path_is_unchanged_without_the_expert_stream(synthetic_dir):
    dm = _datamodule(synthetic_dir)
    assert isinstance(dm.train_dataloader(), ResumableDataLoader) and dm.expert_dataset is None


def test_expert_stream_without_annotated_rows_names_the_manifest(synthetic_dir, tmp_path):
    import pandas as pd

    frame = pd.read_csv(synthetic_dir / "manifest.csv", keep_default_na=False)
    frame["heatmap"] = ""
    (tmp_path / "tokenizer").symlink_to(synthetic_dir / "tokenizer")
    (tmp_path / "images").symlink_to(synthetic_dir / "images")
    frame.to_csv(tmp_path / "manifest.csv", index=False)
    with pytest.raises(ValueError, match=r"manifest.csv has no train rows with a heatmap"):
        MedAlignDataModule(manifest=str(tmp_path / "manifest.csv"), image_size=64, expert_stream=True, num_workers=0).setup("fit")
    with pytest.raises(ValueError, match="expert_batch_size"):
        MedAlignDataModule(manifest=str(synthetic_dir / "manifest.csv"), expert_batch_size=0)


def test_train_fraction_subsamples_nested_seeded_rows(synthetic_dir):
    from medalign.data.manifest import read_manifest
    from medalign.training.datamodule import subsample_rows

    train = read_manifest(synthetic_dir / "manifest.csv", []).split("train")
    small, large = subsample_rows(train, 0.1, seed=3), subsample_rows(train, 0.5, seed=3)
    assert len(small) == round(0.1 * len(train)) and len(large) == round(0.5 * len(train))
    assert set(small.frame.index) <= set(large.frame.index)  # nested: more data adds rows
    other = subsample_rows(train, 0.1, seed=4)
    assert set(other.frame.index) != set(small.frame.index)  # the seed picks the rows
    assert list(small.frame.index) == sorted(small.frame.index)  # manifest order kept
