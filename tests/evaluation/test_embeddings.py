"""The embedding cache: one encoding per (weights, manifest, split, settings); hits re-encode nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from medalign.data.manifest import read_manifest
from medalign.data.transforms import load_image
from medalign.evaluation.embeddings import encode_strings, get_embeddings
from medalign.evaluation.encoders import MedAlignEncoder
from medalign.models import create_dual_encoder

LABELS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]


class Counting(MedAlignEncoder):
    """Counts rows sent through each tower."""

    images = texts = 0

    def encode_images(self, images):
        self.images += len(images)
        return super().encode_images(images)

    def encode_texts(self, texts):
        self.texts += len(texts)
        return super().encode_texts(texts)


def _encoder(tokenizer, seed=0):
    torch.manual_seed(seed)
    model = create_dual_encoder("tiny", vocab_size=len(tokenizer))
    return Counting(model, tokenizer, max_length=32, image_size=64)


def test_cache_hit_reencodes_nothing_and_returns_the_same_arrays(synthetic_dir, tokenizer, tmp_path):
    manifest = synthetic_dir / "manifest.csv"
    encoder = _encoder(tokenizer)
    first = get_embeddings(encoder, manifest, "test", LABELS, cache_dir=tmp_path, batch_size=8, progress=False)
    n = len(read_manifest(manifest, check_files=False).split("test"))
    assert len(first) == n and (encoder.images, encoder.texts) == (n, n)

    again = get_embeddings(encoder, manifest, "test", LABELS[:2], cache_dir=tmp_path, batch_size=8, progress=False)
    assert (encoder.images, encoder.texts) == (n, n)  # other label columns: still a hit
    assert again.key == first.key and again.texts == first.texts
    np.testing.assert_array_equal(again.image, first.image)
    np.testing.assert_array_equal(again.labels, first.labels[:, :2])
    assert again.label_names == LABELS[:2]

    # the cached rows are what the model computes directly for those manifest rows
    row = int(first.index[3])
    frame = pd.read_csv(manifest)
    image = encoder.transform(load_image(synthetic_dir / frame["image"][row]))[0]
    with torch.no_grad():
        direct = encoder.model.encode_image(image[None])[0].numpy()
    np.testing.assert_allclose(first.image[3], direct, atol=1e-5)
    assert first.texts[3] == " ".join(frame["text"][row].split())
    np.testing.assert_allclose(np.linalg.norm(first.text, axis=1), 1, atol=1e-5)

    get_embeddings(encoder, manifest, "val", LABELS, cache_dir=tmp_path, progress=False)  # new split: encodes
    assert encoder.images > n


def test_new_weights_or_manifest_content_miss_the_cache(synthetic_dir, tokenizer, tmp_path):
    manifest = synthetic_dir / "manifest.csv"
    a = get_embeddings(_encoder(tokenizer, 0), manifest, "test", cache_dir=tmp_path / "c", progress=False)
    other = _encoder(tokenizer, 1)
    b = get_embeddings(other, manifest, "test", cache_dir=tmp_path / "c", progress=False)
    assert other.images > 0 and a.key != b.key and not np.allclose(a.image, b.image)

    frame = pd.read_csv(manifest)
    frame["image"] = [str(synthetic_dir / p) for p in frame["image"]]
    frame.loc[frame["split"] == "test", "text"] += " Edited."
    edited = tmp_path / "edited.csv"
    frame.to_csv(edited, index=False)
    again = _encoder(tokenizer, 0)
    c = get_embeddings(again, edited, "test", cache_dir=tmp_path / "c", progress=False, allow_outside_paths=True)
    assert again.texts == len(c) and c.key != a.key
    np.testing.assert_allclose(c.image, a.image, atol=1e-6)  # same images, new reports
    assert all(t.endswith("Edited.") for t in c.texts)


def test_strings_are_cached_too(tokenizer, tmp_path):
    encoder = _encoder(tokenizer)
    first = encode_strings(encoder, ["mild edema", "no effusion"], cache_dir=tmp_path)
    second = encode_strings(encoder, ["mild edema", "no effusion"], cache_dir=tmp_path)
    assert encoder.texts == 2 and first.shape == (2, encoder.model.embed_dim)
    np.testing.assert_array_equal(first, second)


def test_empty_split_is_a_clear_error(synthetic_dir, tokenizer, tmp_path):
    frame = pd.read_csv(synthetic_dir / "manifest.csv")
    frame = frame[frame["split"] != "val"]
    path = tmp_path / "noval.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"noval.csv has no rows with split 'val'"):
        get_embeddings(_encoder(tokenizer), path, "val", cache_dir=tmp_path, progress=False)


def _copy_dataset(src, dst, test_rows: int = 8):
    """A byte-identical manifest (the first test rows only) and its images in another folder."""
    import shutil

    frame = pd.read_csv(src / "manifest.csv")
    frame = frame[frame["split"] == "test"].head(test_rows)
    (dst / "images").mkdir(parents=True)
    for rel in frame["image"]:
        shutil.copy2(src / rel, dst / rel)
    frame.to_csv(dst / "manifest.csv", index=False)
    return dst / "manifest.csv"


def test_identical_manifest_in_another_folder_does_not_reuse_embeddings(synthetic_dir, tokenizer, tmp_path):
    from PIL import Image

    a_manifest = _copy_dataset(synthetic_dir, tmp_path / "a")
    b_manifest = _copy_dataset(synthetic_dir, tmp_path / "b")
    assert a_manifest.read_bytes() == b_manifest.read_bytes()
    first = pd.read_csv(b_manifest)["image"].iloc[0]
    flipped = np.asarray(Image.open(tmp_path / "b" / first))[:, ::-1]  # dataset b: a different image
    Image.fromarray(np.ascontiguousarray(flipped)).save(tmp_path / "b" / first)
    a = get_embeddings(_encoder(tokenizer), a_manifest, "test", cache_dir=tmp_path / "c", progress=False)
    enc = _encoder(tokenizer)
    b = get_embeddings(enc, b_manifest, "test", cache_dir=tmp_path / "c", progress=False)
    assert enc.images == len(b) and a.key != b.key
    assert not np.allclose(a.image[0], b.image[0]) and np.allclose(a.image[1:], b.image[1:], atol=1e-6)


def test_an_image_rewritten_in_place_misses_the_cache(synthetic_dir, tokenizer, tmp_path):
    import os

    manifest = _copy_dataset(synthetic_dir, tmp_path / "a")
    a = get_embeddings(_encoder(tokenizer), manifest, "test", cache_dir=tmp_path / "c", progress=False)
    image = tmp_path / "a" / pd.read_csv(manifest)["image"].iloc[0]
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))
    enc = _encoder(tokenizer)
    b = get_embeddings(enc, manifest, "test", cache_dir=tmp_path / "c", progress=False)
    assert enc.images == len(b) and a.key != b.key
    enc = _encoder(tokenizer)  # content mode: same bytes, so one more run hits its own entry
    c1 = get_embeddings(enc, manifest, "test", cache_dir=tmp_path / "c", progress=False, image_fingerprint="content")
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))
    enc2 = _encoder(tokenizer)
    c2 = get_embeddings(enc2, manifest, "test", cache_dir=tmp_path / "c", progress=False, image_fingerprint="content")
    assert enc2.images == 0 and c1.key == c2.key


_CONCURRENT = """
import sys, numpy as np, torch
from medalign.data.tokenizer import load_tokenizer
from medalign.evaluation.embeddings import get_embeddings
from medalign.evaluation.encoders import MedAlignEncoder
from medalign.models import create_dual_encoder
tok = load_tokenizer(sys.argv[1] + "/tokenizer")
torch.manual_seed(0)
enc = MedAlignEncoder(create_dual_encoder("tiny", vocab_size=len(tok)), tok, max_length=32, image_size=64)
emb = get_embeddings(enc, sys.argv[1] + "/manifest.csv", "test", cache_dir=sys.argv[2], progress=False)
np.save(sys.argv[3], emb.image)
"""


@pytest.mark.slow
def test_concurrent_runs_write_one_complete_cache_entry(synthetic_dir, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root / 'src'}{os.pathsep}{root}", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cache = tmp_path / "cache"
    procs = [
        subprocess.Popen([sys.executable, "-c", _CONCURRENT, str(synthetic_dir), str(cache), str(tmp_path / f"out{i}.npy")],
                         env=env, stderr=subprocess.PIPE, text=True)
        for i in range(3)
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    entries = [p for p in cache.iterdir()]
    assert len(entries) == 1 and not entries[0].name.startswith(".")  # one entry, no temporary leftovers
    assert sorted(f.name for f in entries[0].iterdir()) == ["image.npy", "index.npy", "key.json", "labels.npy", "text.npy", "texts.json"]
    outs = [np.load(tmp_path / f"out{i}.npy") for i in range(3)]
    assert all(np.array_equal(outs[0], o) for o in outs[1:])
    np.testing.assert_array_equal(np.load(entries[0] / "image.npy"), outs[0])
