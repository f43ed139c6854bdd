"""`medalign shard` and reading shards: index, per-sample equality with the manifest path, errors."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from medalign.data.dataset import ImageTextDataset
from medalign.data.manifest import ManifestError, read_manifest
from medalign.data.shard_writer import write_shards
from medalign.data.shards import INDEX_FILE, ShardDataset, ShardSet
from medalign.data.transforms import PairTransform
from tests.conftest import LABELS


@pytest.fixture(scope="session")
def shards_dir(tmp_path_factory, synthetic_dir) -> Path:
    """Shards of the synthetic fixture, written by 2 litdata workers (so item order may differ from row order)."""
    out = tmp_path_factory.getbasetemp() / "synthetic_shards"
    if not (out / INDEX_FILE).is_file():
        write_shards(synthetic_dir / "manifest.csv", out, num_workers=2, chunk_bytes="200KB")
    return out


def test_index_records_hash_columns_and_counts(shards_dir, synthetic_dir):
    index = json.loads((shards_dir / INDEX_FILE).read_text())
    manifest = synthetic_dir / "manifest.csv"
    frame = pd.read_csv(manifest, keep_default_na=False)
    assert index["manifest_sha256"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert index["label_columns"] == [*LABELS, "No Finding"]  # every 1/0/-1/empty column, in manifest order
    for split in ("train", "val", "test"):
        rows = frame[frame["split"] == split]
        assert index["splits"][split] == {"rows": len(rows), "heatmaps": int((rows["heatmap"] != "").sum())}
        assert (shards_dir / split / "index.json").is_file()
    assert sum(len(list((shards_dir / s).glob("chunk-*.bin"))) for s in index["splits"]) > 3  # chunk_bytes honoured
    assert (shards_dir / "tokenizer").is_dir()


def test_row_table_matches_the_manifest(shards_dir, synthetic_dir):
    manifest = read_manifest(synthetic_dir / "manifest.csv", LABELS)
    shards = ShardSet(str(shards_dir), LABELS)
    for split in ("train", "val", "test"):
        want, got = manifest.split(split), shards.split(split)
        assert list(got.frame.index) == list(want.frame.index)
        assert list(got.frame["text"]) == list(want.frame["text"])
        assert list(got.frame["heatmap"]) == list(want.frame["heatmap"])
        torch.testing.assert_close(torch.from_numpy(got.labels()), torch.from_numpy(want.labels()), equal_nan=True)
        assert sorted(got.frame["shard_index"]) == list(range(len(want)))  # a bijection onto the items


@pytest.mark.parametrize("location", ["local", "url"])
def test_shard_samples_equal_manifest_samples(shards_dir, synthetic_dir, location, tmp_path):
    """Same (seed, epoch, row) → the same pixels, heatmap, labels and text, random crop and 2nd view included."""
    manifest = read_manifest(synthetic_dir / "manifest.csv", LABELS).split("train")
    where = str(shards_dir) if location == "local" else f"local:{shards_dir}"  # litdata's stand-in for a bucket
    shards = ShardSet(where, LABELS, cache_dir=str(tmp_path / "cache"))
    train = PairTransform(image_size=48, train=True, crop_scale=(0.3, 1.0))
    view = PairTransform(image_size=48, train=True, crop_scale=(0.2, 0.5))
    options = dict(seed=5, view_transform=view, uncertain="ones", blank="ignore")
    reference = ImageTextDataset(manifest, train, **options)
    dataset = ShardDataset(shards.split("train"), shards.url("train"), train, cache_dir=str(tmp_path / "cache"), **options)
    annotated = [i for i, h in enumerate(manifest.frame["heatmap"]) if h][:3]
    for key in [(0, 0), (3, 7), (1, len(manifest) - 1)] + [(2, i) for i in annotated]:
        want, got = reference[key], dataset[key]
        assert got["index"] == want["index"] and got["text"] == want["text"] and got["has_heatmap"] == want["has_heatmap"]
        for name in ("image", "heatmap", "image_view2", "labels"):
            torch.testing.assert_close(got[name], want[name], rtol=0, atol=0, equal_nan=True, msg=f"{name} at {key}")
    assert any(dataset[(0, i)]["has_heatmap"] for i in annotated)


def test_refuses_to_overwrite_and_replaces_with_overwrite(shards_dir, tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    manifest = Path(json.loads((shards_dir / INDEX_FILE).read_text())["manifest"])
    with pytest.raises(FileExistsError, match="--overwrite"):
        write_shards(manifest, out)
    assert (out / "keep.txt").is_file()
    write_shards(manifest, out, label_columns=LABELS[:2], overwrite=True)
    assert not (out / "keep.txt").exists() and json.loads((out / INDEX_FILE).read_text())["label_columns"] == LABELS[:2]
    assert [p.name for p in tmp_path.iterdir()] == ["s"]  # no partial or old folder left behind


def test_missing_image_names_the_row_and_writes_nothing(synthetic_dir, tmp_path):
    frame = pd.read_csv(synthetic_dir / "manifest.csv", keep_default_na=False)
    shutil.copytree(synthetic_dir / "images", tmp_path / "images")
    shutil.copytree(synthetic_dir / "heatmaps", tmp_path / "heatmaps")
    frame.to_csv(tmp_path / "manifest.csv", index=False)
    (tmp_path / frame["image"].iat[4]).unlink()
    with pytest.raises(ManifestError, match=rf"row 4 \(line 6\), image .*{frame['image'].iat[4]}"):
        write_shards(tmp_path / "manifest.csv", tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_missing_label_column_and_bad_folder_are_named(shards_dir, tmp_path):
    with pytest.raises(ValueError, match=r"lack label column\(s\) \['Fracture'\]"):
        ShardSet(str(shards_dir), ["Fracture"])
    with pytest.raises(FileNotFoundError, match=rf"{INDEX_FILE} not found .*medalign shard"):
        ShardSet(str(tmp_path))


def test_cli_reports_a_missing_manifest(tmp_path, capsys):
    from medalign.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["shard", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 1
    assert "manifest not found" in capsys.readouterr().err


def test_a_different_manifest_is_flagged(shards_dir, tmp_path, caplog):
    other = tmp_path / "manifest.csv"
    other.write_text(Path(json.loads((shards_dir / INDEX_FILE).read_text())["manifest"]).read_text() + "\n")
    shards = ShardSet(str(shards_dir))
    shards.check_manifest(Path(shards.index["manifest"]))
    assert not caplog.records
    shards.check_manifest(other)
    assert "differs from the manifest the shards" in caplog.text
