"""``data.on_error: skip`` end to end: distinct rows per epoch, logged, listed, limited, in `test` too."""

from __future__ import annotations

import csv
import shutil

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch

from medalign.data.skips import BadRow, SkipLedger, TooManyBadRows
from medalign.evaluation.embeddings import get_embeddings
from medalign.evaluation.encoders import MedAlignEncoder
from medalign.models import create_dual_encoder
from tests.conftest import LABELS
from tests.helpers import fit_tiny


def _broken_copy(synthetic_dir, dst, split: str, n_bad: int) -> tuple[object, list[int]]:
    """A copy of the synthetic fixture with the first `n_bad` images of `split` overwritten by junk."""
    shutil.copytree(synthetic_dir, dst)
    frame = pd.read_csv(dst / "manifest.csv")
    rows = frame.index[frame["split"] == split][:n_bad].tolist()
    for row in rows:
        (dst / frame.loc[row, "image"]).write_bytes(b"\x89PNG truncated")
    return dst, rows


class BatchSpy(L.Callback):
    """Records each train batch's rows and whether a skip report reached the model."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.reports_seen = False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batches.append(batch["index"].tolist())
        self.reports_seen |= "bad_rows" in batch


def test_ledger_counts_distinct_rows_per_epoch_and_stops_above_the_share(tmp_path):
    ledger = SkipLedger("train", size=250, max_share=0.01, path=tmp_path / "bad.csv")  # limit: 2 rows
    a, b, c = (BadRow(r, f"img{r}.png", "truncated") for r in (3, 7, 9))
    assert ledger.record([a, a, b], epoch=0) == 2 and ledger.record([b], epoch=0) == 0 and ledger.count == 2
    assert ledger.record([a], epoch=1) == 1 and ledger.count == 1  # a new epoch re-counts
    with pytest.raises(TooManyBadRows, match=r"3 distinct unreadable rows in the train split in epoch 1 .*0.01 of 250 rows.*bad.csv"):
        ledger.record([b, c], epoch=1)
    listed = list(csv.DictReader((tmp_path / "bad.csv").open()))
    assert [(r["epoch"], r["row"]) for r in listed] == [("0", "3"), ("0", "7"), ("1", "3"), ("1", "7"), ("1", "9")]


@pytest.mark.slow
def test_fit_skips_counts_logs_and_lists_distinct_bad_rows_each_epoch(tmp_path, synthetic_dir):
    data, bad = _broken_copy(synthetic_dir, tmp_path / "data", "train", n_bad=3)
    cli = fit_tiny(tmp_path / "run", data, "--data.on_error", "skip", "--data.max_skip_share", "0.05",
                   "--data.check_files", "false", "--trainer.max_epochs", "2", "--trainer.limit_val_batches", "0",
                   "--trainer.callbacks+", "tests.training.test_skip_mode.BatchSpy")
    spy = next(c for c in cli.trainer.callbacks if type(c).__name__ == "BatchSpy")
    assert not spy.reports_seen  # taken off before the model's step
    assert all(len(set(rows)) == len(rows) for rows in spy.batches)  # no duplicate pair in a batch
    assert not set(bad) & {r for rows in spy.batches for r in rows}  # the bad rows never reached the model
    assert float(cli.trainer.callback_metrics["data/skipped_rows"]) == 3.0  # epoch 1: the same 3 rows, once each
    listed = list(csv.DictReader((tmp_path / "run" / "bad_rows.csv").open()))
    per_epoch = {e: sorted(int(r["row"]) for r in listed if r["epoch"] == e) for e in ("0", "1")}
    assert per_epoch == {"0": sorted(bad), "1": sorted(bad)}


@pytest.mark.slow
def test_fit_stops_when_the_share_of_bad_rows_is_exceeded(tmp_path, synthetic_dir):
    data, _ = _broken_copy(synthetic_dir, tmp_path / "data", "train", n_bad=6)  # > 1 % of ~140 train rows
    with pytest.raises(TooManyBadRows, match="max_skip_share = 0.01"):
        fit_tiny(tmp_path / "run", data, "--data.on_error", "skip", "--data.check_files", "false",
                 "--trainer.max_epochs", "1", "--trainer.limit_val_batches", "0")


def test_test_encoding_skips_bad_rows_with_their_labels_and_lists_them(tmp_path, synthetic_dir, tokenizer):
    data, bad = _broken_copy(synthetic_dir, tmp_path / "data", "test", n_bad=2)
    torch.manual_seed(0)
    encoder = MedAlignEncoder(create_dual_encoder("tiny", vocab_size=len(tokenizer)), tokenizer, max_length=32, image_size=64)
    with pytest.raises(OSError, match=r"cannot read image .*\.png"):
        get_embeddings(encoder, data / "manifest.csv", "test", LABELS, cache_dir=tmp_path / "c", progress=False)
    frame = pd.read_csv(data / "manifest.csv")
    test_rows = frame.index[frame["split"] == "test"].to_numpy()
    kwargs = dict(cache_dir=tmp_path / "c", progress=False, on_error="skip", max_skip_share=0.1, bad_rows_path=tmp_path / "bad.csv")
    emb = get_embeddings(encoder, data / "manifest.csv", "test", LABELS, **kwargs)
    expected = [r for r in test_rows if r not in bad]
    assert emb.index.tolist() == expected and emb.image.shape[0] == emb.text.shape[0] == len(expected)
    truth = frame.loc[expected, LABELS].fillna(0).to_numpy(np.float32).clip(min=0)  # uncertain/blank → 0
    np.testing.assert_array_equal(emb.labels, truth)  # labels of the kept rows, not the first N
    assert emb.texts[0] == " ".join(str(frame.loc[expected[0], "text"]).split())
    assert sorted(int(r["row"]) for r in csv.DictReader((tmp_path / "bad.csv").open())) == sorted(bad)
    again = get_embeddings(encoder, data / "manifest.csv", "test", LABELS, **kwargs)  # from the cache
    np.testing.assert_array_equal(again.labels, truth)
    assert again.key == emb.key
    with pytest.raises(TooManyBadRows):
        get_embeddings(encoder, data / "manifest.csv", "test", LABELS, **{**kwargs, "max_skip_share": 0.0, "cache_dir": tmp_path / "d"})
