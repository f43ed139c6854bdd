"""The gaze test bed: each knob does what it says, output is deterministic, the CLI builds it."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

pytest.importorskip("torchxrayvision")

from medalign.synthetic.testbed.assets import SIDE_WORDS, load_assets  # noqa: E402
from medalign.synthetic.testbed.generate import (  # noqa: E402
    _GAZE, _IMAGE, TESTBED_LABELS, TestbedConfig, generate_testbed, render_pair, sample_lesions,
)
from medalign.synthetic.images import render_heatmap  # noqa: E402

SMALL = TestbedConfig(n=60, image_size=32, heatmap_fraction=1.0, test_heatmap_fraction=1.0)


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix in (".csv", ".png", ".npy")}


def test_same_seed_same_bytes_and_pair_independent_of_n(tmp_path):
    a = generate_testbed(tmp_path / "a", SMALL, progress=False).parent
    b = generate_testbed(tmp_path / "b", SMALL, progress=False).parent
    assert _digest(a) == _digest(b)
    c = generate_testbed(tmp_path / "c", replace(SMALL, seed=1), progress=False).parent
    assert _digest(a) != _digest(c)
    bigger = generate_testbed(tmp_path / "d", replace(SMALL, n=70), progress=False).parent
    assert (a / "images/00007.png").read_bytes() == (bigger / "images/00007.png").read_bytes()


def test_manifest_columns_and_real_geometry(tmp_path):
    frame = pd.read_csv(generate_testbed(tmp_path, SMALL, progress=False), keep_default_na=False)
    assert list(frame.columns[:7]) == ["image", "text", "split", "heatmap", "id", "study_id", "subject_id"]
    assert set(TESTBED_LABELS) | {"No Finding", "lesions", "markers"} <= set(frame.columns)
    assets = load_assets()
    for row in frame.to_dict("records"):
        drawn = [item.split(":") for item in row["lesions"].split("|") if item]
        for label, _, _, _, box in drawn:
            box = np.array([float(v) for v in box.split(",")])
            pool = assets.boxes[label]  # every drawn lesion is a real box of its class (4-decimal cells)
            assert np.abs(pool - box).max(axis=1).min() < 1e-4
        reported = {item[0] for item in drawn} - {"distractor"}
        assert {name for name in TESTBED_LABELS if row[name] == 1} == reported
        assert row["No Finding"] == int(not reported)


def test_distractors_in_the_image_never_in_report_or_gaze(tmp_path):
    config = replace(SMALL, distractors=3.0, shortcut=0.0)
    assets = load_assets()
    seen = 0
    for i in range(20):
        mask, lesions = sample_lesions(config, i, assets)
        reported = [les for les in lesions if les.label != "distractor"]
        if len(reported) == len(lesions):
            continue
        seen += 1
        rngs = lambda: (np.random.default_rng([config.seed, i, _IMAGE]), np.random.default_rng([config.seed, i, _GAZE]))  # noqa: E731
        with_d, without = render_pair(mask, lesions, 32, *rngs()), render_pair(mask, reported, 32, *rngs())
        assert np.abs(with_d.image.astype(int) - without.image.astype(int)).max() > 20  # drawn
        np.testing.assert_array_equal(render_heatmap(with_d), render_heatmap(without))  # not looked at
    assert seen >= 10
    many = pd.read_csv(generate_testbed(tmp_path / "d", config, progress=False), keep_default_na=False)
    none = pd.read_csv(generate_testbed(tmp_path / "n", replace(config, distractors=0.0), progress=False),
                       keep_default_na=False)
    assert many["lesions"].str.count("distractor").sum() > 100
    assert (many["text"] == none["text"]).all()  # the report does not change with distractors
    assert (many["heatmap"] == none["heatmap"]).all() and (many["heatmap"] != "").sum() > 30
    for path_a, path_b in zip(many["heatmap"], none["heatmap"]):
        if not path_a:
            continue
        np.testing.assert_array_equal(np.load(tmp_path / "d" / path_a), np.load(tmp_path / "n" / path_b))


def _positive_sentences(frame: pd.DataFrame) -> list[str]:
    negation = re.compile(r"\b(no|normal|without|clear|unremarkable|intact)\b", re.IGNORECASE)
    return [s for t in frame["text"] for s in re.split(r"(?<=\.)\s+", t) if not negation.search(s)]


@pytest.mark.parametrize("omitted", [0.0, 1.0])
def test_location_omitted(tmp_path, omitted):
    config = replace(SMALL, n=80, location_omitted=omitted, distractors=0.0, shortcut=0.0)
    frame = pd.read_csv(generate_testbed(tmp_path, config, progress=False), keep_default_na=False)
    lesions = [item.split(":") for cell in frame["lesions"] for item in cell.split("|") if item]
    lung = [item for item in lesions if item[0] != "Cardiomegaly"]
    assert all(item[3] == str(int(omitted == 0.0)) for item in lung)
    with_side = [s for s in _positive_sentences(frame) if SIDE_WORDS.search(s)]
    if omitted == 1.0:
        assert with_side == []
    else:
        assert len(with_side) >= 0.9 * len(lung)
        sides = {(item[1]) for item in lung}
        assert sides <= {"right", "left", "bilateral"} and len(sides) >= 2


def test_padchest_default_states_location_mostly():
    rates = load_assets().localised
    assert set(rates) == set(TESTBED_LABELS)
    assert all(0.8 < r <= 1.0 for r in rates.values())


def test_shortcut_markers_follow_labels_in_train_and_are_independent_in_test(tmp_path):
    config = replace(SMALL, n=400, image_size=16, heatmap_fraction=0.0, test_heatmap_fraction=0.0,
                     split_fractions=(0.5, 0.0, 0.5))
    frame = pd.read_csv(generate_testbed(tmp_path, config, progress=False), keep_default_na=False)
    for split in ("train", "test"):
        rows = frame[frame["split"] == split]
        for name in TESTBED_LABELS:
            marked = rows["markers"].str.split("|").map(lambda m, n=name: n in m).to_numpy()
            label = rows[name].to_numpy() == 1
            if split == "train":
                assert not (marked & ~label).any()  # a marker only on its class's positives
                assert marked[label].mean() > 0.8  # P = 0.9
            else:
                table = [[int((marked & label).sum()), int((marked & ~label).sum())],
                         [int((~marked & label).sum()), int((~marked & ~label).sum())]]
                assert stats.fisher_exact(table).pvalue > 0.01, (name, table)
                assert marked.sum() > 0


def test_heatmap_fraction_counts(tmp_path):
    config = replace(SMALL, n=200, image_size=16, heatmap_fraction=0.05, test_heatmap_fraction=0.0)
    frame = pd.read_csv(generate_testbed(tmp_path, config, progress=False), keep_default_na=False)
    train = frame[frame["split"] == "train"]
    assert (train["heatmap"] != "").sum() == round(0.05 * len(train))
    assert (frame.loc[frame["split"] != "train", "heatmap"] == "").all()


def test_cli_builds_the_testbed_and_rejects_foreign_options(tmp_path, capsys):
    from medalign.cli import main

    main(["synth", "--testbed", "gaze", "--out", str(tmp_path / "tb"), "--n", "12", "--image-size", "16",
          "--location-omitted", "0.5"])
    assert (tmp_path / "tb/manifest.csv").is_file() and "testbed-info" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["synth", "--testbed", "gaze", "--out", str(tmp_path / "x"), "--max-reports", "3"])
    with pytest.raises(SystemExit):
        main(["synth", "--testbed", "gaze", "--source", "openi", "--out", str(tmp_path / "y")])


@pytest.mark.slow
def test_default_has_1000_single_label_test_rows():
    from medalign.synthetic.generate import _assign_splits

    config = TestbedConfig()
    splits = _assign_splits(config)
    assets = load_assets()
    single = sum(len([les for les in sample_lesions(config, i, assets)[1] if les.label != "distractor"]) == 1
                 for i in np.flatnonzero(splits == "test"))
    assert single >= 1000


def test_omitting_locations_takes_most_of_the_reports_heatmap_r2(tmp_path):
    """Where a finding has a location to state (lung lesions), the report's R² comes from stating it.

    Over all rows the class words alone still predict part of the heatmap (a normal read's scan,
    the heart for cardiomegaly), so the drop is measured on the rows with a lung lesion.
    """
    from medalign.synthetic.testbed.info import cross_validated_r2, load_grid, text_features

    r2, r2_all = {}, {}
    for omitted in (0.0, 1.0):
        config = replace(SMALL, n=300, image_size=16, location_omitted=omitted, distractors=0.0, shortcut=0.0)
        path = generate_testbed(tmp_path / str(omitted), config, progress=False)
        frame = pd.read_csv(path, keep_default_na=False)
        rows = frame[frame["heatmap"] != ""]
        lung = rows[rows["lesions"].str.contains("Atelectasis|Consolidation|Nodule|Pleural")]
        for out, part in ((r2, lung), (r2_all, rows)):
            heat = load_grid([path.parent / p for p in part["heatmap"]], 8)
            out[omitted] = cross_validated_r2(text_features(part["text"].tolist()), heat)
    assert r2[0.0] > 0.02, r2  # measured 0.029 (184 rows)
    assert r2[1.0] < 0.25 * r2[0.0], r2  # measured -0.001: the report says nothing about where
    assert r2_all[1.0] < r2_all[0.0] - 0.04, r2_all  # measured 0.179 → 0.111


def test_every_image_has_a_lung_field_although_82_shipped_masks_are_blank():
    from medalign.synthetic.testbed.assets import lung_mask

    assets = load_assets()
    config = TestbedConfig(n=400, image_size=32)
    first_draws = [int(np.random.default_rng([0, i, 0]).integers(len(assets.mask_names))) for i in range(config.n)]
    assert sum(not lung_mask(m, 32).any() for m in first_draws) > 20  # a plain draw would hit blank masks (≈ 16 %)
    masks = [sample_lesions(config, i, assets)[0] for i in range(config.n)]
    assert all(lung_mask(m, 32).mean() > 0.05 for m in masks)


def test_a_stale_testbed_folder_is_refused_not_reused(tmp_path):
    import json

    from medalign.synthetic.sources import ensure_embedded_at
    from medalign.synthetic.testbed.generate import TESTBED_VERSION

    config = TestbedConfig(n=30, image_size=32)
    manifest = tmp_path / "tb" / "manifest.csv"
    spec = {"manifest": str(manifest), "source": "gaze", "n": 30, "image_size": 32}
    assert ensure_embedded_at(manifest, spec) == manifest  # generated on first use
    assert ensure_embedded_at(manifest, spec) == manifest  # then reused as is
    with pytest.raises(ValueError, match=r"n 30 ≠ 40"):
        ensure_embedded_at(manifest, {**spec, "n": 40})
    summary = json.loads((manifest.parent / "testbed.json").read_text())
    (manifest.parent / "testbed.json").write_text(json.dumps({**summary, "version": TESTBED_VERSION - 1}))
    with pytest.raises(ValueError, match=rf"version {TESTBED_VERSION - 1} \(this code writes version {TESTBED_VERSION}\)"):
        ensure_embedded_at(manifest, spec)
    assert config.n == 30 and ensure_embedded_at(manifest, {**spec, "manifest": str(tmp_path / "elsewhere.csv")}) is None


def test_independent_markers_keep_rates_and_test_images_but_not_the_correlation(tmp_path):
    config = replace(SMALL, n=400, image_size=16, heatmap_fraction=0.0, test_heatmap_fraction=0.0,
                     split_fractions=(0.5, 0.0, 0.5))
    shortcut = pd.read_csv(generate_testbed(tmp_path / "s", config, progress=False), keep_default_na=False)
    control = pd.read_csv(generate_testbed(tmp_path / "c", replace(config, markers="independent"), progress=False),
                          keep_default_na=False)
    test = (control["split"] == "test").to_numpy()
    assert (control["markers"][test] == shortcut["markers"][test]).all()  # the same test split, byte for byte
    assert all((tmp_path / "c" / p).read_bytes() == (tmp_path / "s" / p).read_bytes() for p in control["image"][test])
    train = control[control["split"] == "train"]
    for name in TESTBED_LABELS:
        marked = train["markers"].str.split("|").map(lambda m, n=name: n in m).to_numpy()
        label = train[name].to_numpy() == 1
        assert (marked & ~label).any()  # unlike the shortcut, markers fall on rows without the finding
        table = [[int((marked & label).sum()), int((marked & ~label).sum())],
                 [int((~marked & label).sum()), int((~marked & ~label).sum())]]
        assert stats.fisher_exact(table).pvalue > 0.01, (name, table)
    with pytest.raises(ValueError, match="markers must be 'shortcut' or 'independent'"):
        TestbedConfig(markers="random")
