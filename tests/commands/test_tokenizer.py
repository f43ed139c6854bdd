"""`medalign tokenizer`: a deterministic WordPiece vocabulary from a manifest's train reports."""

from __future__ import annotations

import pandas as pd
import pytest

from medalign.commands.tokenizer import run
from medalign.data.tokenizer import load_tokenizer


def _manifest(tmp_path):
    rows = [("a.png", f"mild cardiomegaly with pleural effusion number {i}", "train") for i in range(30)]
    rows += [("b.png", "zyxwvut findings only in test", "test"), ("c.png", "qqqqvalonly", "val")]
    path = tmp_path / "data" / "manifest.csv"
    path.parent.mkdir()
    pd.DataFrame(rows, columns=["image", "text", "split"]).to_csv(path, index=False)
    return path


def test_vocabulary_comes_from_train_reports_and_is_byte_identical(tmp_path, capsys):
    manifest = _manifest(tmp_path)
    run([str(manifest), "--vocab-size", "200"])  # default folder: beside the manifest, where fit looks
    run([str(manifest), "--out", str(tmp_path / "again"), "--vocab-size", "200"])
    first, again = manifest.parent / "tokenizer", tmp_path / "again"
    assert (first / "tokenizer.json").read_bytes() == (again / "tokenizer.json").read_bytes()
    vocab = load_tokenizer(first).get_vocab()
    assert {"cardiomegaly", "effusion", "pleural"} <= set(vocab)
    assert "zyxwvut" not in vocab and "qqqqvalonly" not in vocab  # test / val text never shapes it
    assert "100.0% of their words" in capsys.readouterr().out


def test_refuses_to_overwrite_without_force(tmp_path):
    manifest = _manifest(tmp_path)
    run([str(manifest), "--vocab-size", "200"])
    with pytest.raises(SystemExit, match="--force"):
        run([str(manifest), "--vocab-size", "200"])
    run([str(manifest), "--vocab-size", "150", "--force"])
    assert len(load_tokenizer(manifest.parent / "tokenizer")) == 150
