"""5x200-style balanced single-label manifests (the thin caller of medalign.prepare.subsets)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medalign.data.manifest import read_manifest
from tests.oracles.builders import balanced_single_label
from medalign.prepare.subsets import eligible_counts

CLASSES = ["A", "B", "C"]


@pytest.fixture()
def manifest(tmp_path):
    rng = np.random.default_rng(0)
    n = 800
    labels = rng.choice([0, 1, -1], p=[0.6, 0.3, 0.1], size=(n, 3)).astype(float)
    labels[rng.random((n, 3)) < 0.2] = np.nan  # blank: not mentioned
    (tmp_path / "data" / "img").mkdir(parents=True)
    frame = pd.DataFrame(
        {"image": [f"img/{i}.png" for i in range(n)], "text": [f"r{i}" for i in range(n)],
         "split": rng.choice(["train", "test"], size=n), **{c: labels[:, k] for k, c in enumerate(CLASSES)}}
    )
    path = tmp_path / "data" / "manifest.csv"
    frame.to_csv(path, index=False)
    return path


def test_hand_made_table_blank_is_not_positive_uncertain_and_two_positives_are_ineligible(tmp_path):
    rows = [  # (A, B, C), expected owner or None
        ((1, None, None), "A"),  # blanks elsewhere: eligible
        ((1, 0, -1), None),  # an uncertain class: ineligible
        ((1, 1, 0), None),  # two positives: ineligible
        ((None, 1, 0), "B"),  # a blank next to the positive: eligible
        ((0, 0, 1), "C"),
        ((None, None, None), None),  # nothing positive
        ((-1, None, 1), None),
        ((0, None, 1), "C"),
    ]
    (tmp_path / "x.png").write_bytes(b"")
    frame = pd.DataFrame([{"image": "x.png", "text": f"r{i}", "split": "test", **dict(zip(CLASSES, v))} for i, (v, _) in enumerate(rows)])
    path = tmp_path / "m.csv"
    frame.to_csv(path, index=False)
    assert eligible_counts(pd.read_csv(path), CLASSES) == {"A": 1, "B": 1, "C": 2}
    built = balanced_single_label(path, CLASSES, per_class=1, seed=0).frame
    owners = {f"r{i}": o for i, (_, o) in enumerate(rows)}
    assert [owners[t] for t in built["text"]] == ["A", "B", "C"]
    np.testing.assert_array_equal(built[CLASSES].to_numpy(), np.eye(3))  # blanks written as explicit zeros
    with pytest.raises(ValueError, match=r"fewer than 2 single-label images for \{'A': 1, 'B': 1\} \(eligible per class: "
                                         r"\{'A': 1, 'B': 1, 'C': 2\}\)"):
        balanced_single_label(path, CLASSES, per_class=2)


def test_balanced_single_label_rows_are_balanced_single_label_and_seeded(manifest, tmp_path):
    out = tmp_path / "eval" / "3x10.csv"
    built = balanced_single_label(manifest, CLASSES, per_class=10, seed=3, out=out)
    frame = built.frame
    source = pd.read_csv(manifest)
    rows = source.set_index("text").loc[frame["text"]]  # the original rows, by their unique report
    values = rows[CLASSES].to_numpy()
    assert len(frame) == 30 and (rows["split"] == "test").all() and (frame["split"] == "test").all()
    assert ((values == 1).sum(1) == 1).all()  # positive for exactly one class
    assert not (values == -1).any()  # none uncertain
    assert np.isnan(values).any()  # blanks were eligible (20 % of cells are blank)
    np.testing.assert_array_equal(frame[CLASSES].to_numpy(), np.repeat(np.eye(3), 10, axis=0))
    assert frame["text"].is_unique
    # paths were rewritten relative to the new manifest's folder and still point at the same files
    assert frame["image"].iloc[0] == "../data/" + rows["image"].iloc[0]
    again = read_manifest(balanced_single_label(manifest, CLASSES, 10, seed=3, out=tmp_path / "again.csv").path, CLASSES, check_files=False)
    assert again.frame["text"].tolist() == frame["text"].tolist()
    other = balanced_single_label(manifest, CLASSES, 10, seed=4)
    assert other.frame["text"].tolist() != frame["text"].tolist()


def test_eligible_counts_match_a_row_by_row_count(manifest):
    test = pd.read_csv(manifest).query("split == 'test'")
    expected = {c: 0 for c in CLASSES}
    for _, row in test.iterrows():  # independent rule, one row at a time
        cells = [row[c] for c in CLASSES]
        if sum(v == 1 for v in cells) == 1 and not any(v == -1 for v in cells):
            expected[CLASSES[[v == 1 for v in cells].index(True)]] += 1
    assert eligible_counts(test, CLASSES) == expected
    with pytest.raises(ValueError, match=r"fewer than 500 single-label images for \{'A': \d+"):
        balanced_single_label(manifest, CLASSES, per_class=500)
