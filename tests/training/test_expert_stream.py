"""The eCLIP expert stream: oversampled sampler, combined loader, determinism and resume."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.utilities import CombinedLoader

from medalign.curriculum import expert_decision
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


def test_gated_sampler_blanks_unused_batches_and_keeps_the_draws():
    used = lambda epoch, batch: batch % 3 != 1  # noqa: E731
    plain = list(OversampledEpochSampler(5, 12, seed=2))
    gated = list(OversampledEpochSampler(5, 12, seed=2, batch_size=3, use_batch=used))
    assert gated == [None if used(0, i // 3) is False else key for i, key in enumerate(plain)]
    resumed = OversampledEpochSampler(5, 12, seed=2, batch_size=3, use_batch=used)
    resumed.skip(0, 6)
    assert list(resumed) == gated[6:]


def _gated_batches(synthetic_dir, world, rank, decide, accumulate=1, state=None, **kwargs):
    """The (main, expert) index lists a data module serves rank `rank` of `world` under a module deciding by `decide`."""
    dm = _datamodule(synthetic_dir, expert_stream=True, **kwargs)
    dm.trainer = SimpleNamespace(world_size=world, global_rank=rank, accumulate_grad_batches=accumulate,
                                 lightning_module=SimpleNamespace(expert_used_at=decide))
    if state is not None:
        dm.load_state_dict(state)
    loader = dm.train_dataloader()
    dm.trainer.num_training_batches = len(dm._train_loader)  # Lightning sets it before iterating
    return [(b["main"]["index"].tolist(), None if b["expert"] is None else b["expert"]["index"].tolist())
            for b, *_ in loader]


def _ungated(synthetic_dir, world, rank):
    return _gated_batches(synthetic_dir, world, rank, lambda step: True)


def test_expert_images_load_only_on_steps_that_use_them_identically_on_every_rank(synthetic_dir):
    decide = lambda step: expert_decision(0, step, 0.5)  # noqa: E731 - a pure function of the step, like eCLIP's
    for world in (1, 2):
        ranks = [_gated_batches(synthetic_dir, world, r, decide) for r in range(world)]
        for rank, batches in enumerate(ranks):
            plan = [decide(step) for step in range(len(batches))]
            assert 0 < sum(plan) < len(plan), "all or no steps drawn: the test would prove nothing"
            assert [expert is not None for _, expert in batches] == plan  # loaded exactly when used
            full = _ungated(synthetic_dir, world, rank)
            assert [b for b, used in zip(batches, plan) if used] == [b for b, used in zip(full, plan) if used]  # same draws
            assert [main for main, _ in batches] == [main for main, _ in full]


def test_gating_counts_accumulated_steps_and_resumes_mid_epoch(synthetic_dir):
    decide = lambda step: step % 2 == 0  # noqa: E731
    batches = _gated_batches(synthetic_dir, 1, 0, decide, accumulate=2)
    assert [expert is not None for _, expert in batches] == [decide(k // 2) for k in range(len(batches))]
    resumed = _gated_batches(synthetic_dir, 1, 0, decide, accumulate=2, state={"epoch": 0, "batches": 4, "batch_size": 16})
    assert resumed == batches[4:]


def test_expert_loader_workers_pass_skipped_batches_through(synthetic_dir):
    decide = lambda step: step % 2 == 1  # noqa: E731
    with_workers = _gated_batches(synthetic_dir, 1, 0, decide, expert_num_workers=1)
    assert with_workers == _gated_batches(synthetic_dir, 1, 0, decide)
    assert [expert is None for _, expert in with_workers][:4] == [True, False, True, False]


@pytest.mark.slow
def test_fit_loads_expert_images_only_when_drawn_and_resumes_with_the_same_draws(tmp_path, synthetic_dir, monkeypatch):
    """Through the CLI (tiny eCLIP, 10 steps, curriculum on): an uninterrupted run and one resumed at step 3."""
    import sys
    from pathlib import Path

    from medalign.training.eclip import ECLIPModule
    from tests.helpers import fit_tiny

    monkeypatch.setattr(sys, "argv", list(sys.argv))
    config = str(Path(__file__).parents[1] / "conf" / "tiny_eclip.yaml")
    runs: dict[str, dict[int, tuple[bool, list[int] | None]]] = {"a": {}, "b": {}}
    run = "a"
    original = ECLIPModule.training_step

    def recording(self, batch, batch_idx):
        expert = batch["expert"]
        runs[run][self.global_step] = (self.expert_used_at(self.global_step), None if expert is None else expert["index"].tolist())
        return original(self, batch, batch_idx)

    monkeypatch.setattr(ECLIPModule, "training_step", recording)
    fit_tiny(tmp_path / "a", synthetic_dir, "--trainer.limit_val_batches", "0", config=config)
    assert sorted(runs["a"]) == list(range(10))
    assert all(used == (rows is not None) for used, rows in runs["a"].values())  # loaded exactly when used
    assert 0 < sum(used for used, _ in runs["a"].values()) < 10
    run = "b"
    fit_tiny(tmp_path / "b", synthetic_dir, "--trainer.limit_val_batches", "0", "--ckpt_path",
             str(tmp_path / "a" / "ckpt" / "step3.ckpt"), config=config)
    assert runs["b"] == {s: runs["a"][s] for s in range(3, 10)}
