"""5x200-style balanced single-label manifests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medalign.data.manifest import read_manifest
from medalign.evaluation.builders import balanced_single_label

CLASSES = ["A", "B", "C"]


@pytest.fixture()
def manifest(tmp_path):
    rng = np.random.default_rng(0)
    n = 800
    labels = rng.choice([0, 1, -1], p=[0.6, 0.3, 0.1], size=(n, 3)).astype(float)
    labels[rng.random((n, 3)) < 0.05] = np.nan
    (tmp_path / "data" / "img").mkdir(parents=True)
    frame = pd.DataFrame(
        {"image": [f"img/{i}.png" for i in range(n)], "text": [f"r{i}" for i in range(n)],
         "split": rng.choice(["train", "test"], size=n), **{c: labels[:, k] for k, c in enumerate(CLASSES)}}
    )
    path = tmp_path / "data" / "manifest.csv"
    frame.to_csv(path, index=False)
    return path


def test_balanced_single_label_rows_are_balanced_single_label_and_seeded(manifest, tmp_path):
    out = tmp_path / "eval" / "3x10.csv"
    built = balanced_single_label(manifest, CLASSES, per_class=10, seed=3, out=out)
    frame = built.frame
    source = pd.read_csv(manifest)
    rows = source.set_index("text").loc[frame["text"]]  # the original rows, by their unique report
    values = rows[CLASSES].to_numpy()
    assert len(frame) == 30 and (rows["split"] == "test").all() and (frame["split"] == "test").all()
    assert ((values == 1).sum(1) == 1).all()  # positive for exactly one class
    assert np.isin(values, [0, 1]).all()  # known (no NaN, no uncertain) for every class
    assert ((values == 1).sum(0) == 10).all()  # balanced
    assert frame["text"].is_unique
    # paths were rewritten relative to the new manifest's folder and still point at the same files
    assert frame["image"].iloc[0] == "../data/" + rows["image"].iloc[0]
    again = read_manifest(balanced_single_label(manifest, CLASSES, 10, seed=3, out=tmp_path / "again.csv").path, CLASSES, check_files=False)
    assert again.frame["text"].tolist() == frame["text"].tolist()
    other = balanced_single_label(manifest, CLASSES, 10, seed=4)
    assert other.frame["text"].tolist() != frame["text"].tolist()


def test_too_few_rows_names_the_counts(manifest):
    with pytest.raises(ValueError, match=r"need 500 single-label rows per class, found \{'A': \d+"):
        balanced_single_label(manifest, CLASSES, per_class=500)
