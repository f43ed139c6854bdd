"""The embedded synthetic dataset: determinism, manifest contract, heatmaps, tokenizer, prompts."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medalign.data.prompts import load_prompts
from medalign.synthetic.generate import LABELS, SyntheticConfig, ensure_synthetic, generate_synthetic
from medalign.synthetic.reports import FINDING_KEYWORDS, NEGATION_PATTERN
from medalign.data.tokenizer import load_tokenizer

PROMPTS = Path(__file__).resolve().parents[2] / "src" / "medalign" / "configs" / "prompts" / "chexpert5.json"
COLUMNS = ["image", "text", "split", "heatmap", "id", "study_id", "subject_id", *LABELS, "No Finding"]
CONFIG = SyntheticConfig(n=60, image_size=32, seed=3, heatmap_fraction=0.25, test_heatmap_fraction=0.5)


def read(manifest: Path) -> pd.DataFrame:
    return pd.read_csv(manifest, keep_default_na=False)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return generate_synthetic(tmp_path_factory.mktemp("syn") / "a", CONFIG, progress=False)


def test_same_seed_same_bytes_other_seed_differs(dataset, tmp_path):
    again = generate_synthetic(tmp_path / "b", CONFIG, progress=False)
    assert dataset.read_bytes() == again.read_bytes()
    for rel in read(dataset)["image"]:
        assert (dataset.parent / rel).read_bytes() == (again.parent / rel).read_bytes()
    other = generate_synthetic(tmp_path / "c", SyntheticConfig(n=60, image_size=32, seed=4), progress=False)
    assert read(other)["text"].tolist() != read(dataset)["text"].tolist()
    assert (other.parent / "images/00000.png").read_bytes() != (dataset.parent / "images/00000.png").read_bytes()


def test_pair_does_not_depend_on_n(dataset, tmp_path):
    small = generate_synthetic(tmp_path / "s", SyntheticConfig(n=5, image_size=32, seed=3), progress=False)
    assert read(small)["text"].tolist() == read(dataset)["text"].tolist()[:5]
    assert (small.parent / "images/00004.png").read_bytes() == (dataset.parent / "images/00004.png").read_bytes()


def test_manifest_columns_splits_and_files(dataset):
    frame = read(dataset)
    assert list(frame.columns) == COLUMNS
    assert len(frame) == CONFIG.n
    assert frame["split"].value_counts().to_dict() == {"train": 48, "val": 6, "test": 6}
    assert frame["study_id"].is_unique and frame["id"].is_unique
    assert frame.groupby("subject_id")["split"].nunique().max() == 1  # no subject spans two splits
    for rel in frame["image"]:
        image = Image.open(dataset.parent / rel)
        assert image.mode == "L" and image.size == (32, 32)


def _positive_mentions(text: str) -> set[str]:
    found = set()
    for sentence in re.split(r"(?<=\.)\s+", text):
        if not NEGATION_PATTERN.search(sentence):
            low = sentence.lower()
            found |= {name for name, words in FINDING_KEYWORDS.items() if any(w in low for w in words)}
    return found


def test_report_mentions_a_finding_iff_labelled(dataset):
    frame = read(dataset)
    n_negations = 0
    for _, row in frame.iterrows():
        positive = {name for name in LABELS if row[name] == 1}
        assert _positive_mentions(row["text"]) == positive, row["text"]
        assert row["No Finding"] == int(not positive)
        n_negations += len(NEGATION_PATTERN.findall(row["text"]))
    assert n_negations > len(frame) // 2  # negations are common, so bag-of-words is not enough


def test_label_counts_roughly_as_configured(tmp_path):
    frame = read(generate_synthetic(tmp_path / "d", SyntheticConfig(n=400, image_size=16), progress=False))
    n_findings = frame[list(LABELS)].sum(axis=1)
    assert set(n_findings) == {0, 1, 2}
    assert abs((n_findings == 0).mean() - 0.2) < 0.06
    assert abs((n_findings == 2).mean() - 0.2) < 0.06
    for name in LABELS:  # each finding in roughly (0.6 + 2 * 0.2) / 5 = 20% of pairs
        assert 0.12 < frame[name].mean() < 0.28, name


def test_heatmaps_fraction_shape_range(dataset):
    frame = read(dataset)
    has = frame["heatmap"] != ""
    assert set(frame.loc[has, "split"]) == {"train", "test"}  # never val
    n_test = int((frame["split"] == "test").sum())
    assert (has & (frame["split"] == "train")).sum() == round(0.25 * 48)
    assert (has & (frame["split"] == "test")).sum() == max(1, round(0.5 * n_test))
    for rel in frame.loc[has, "heatmap"]:
        heat = np.load(dataset.parent / rel)
        assert heat.dtype == np.float32 and heat.shape == (32, 32)
        assert heat.min() >= 0 and heat.max() == pytest.approx(1.0)
    summary = json.loads((dataset.parent / "synthetic.json").read_text())
    assert summary["config"]["n"] == 60 and summary["counts"]["train"]["heatmaps"] == (has & (frame["split"] == "train")).sum()


def test_heatmap_peaks_on_consolidation_side(tmp_path):
    config = SyntheticConfig(n=300, image_size=32, heatmap_fraction=1.0)
    frame = read(generate_synthetic(tmp_path / "h", config, progress=False))
    rows = frame[(frame["heatmap"] != "") & (frame[list(LABELS)].sum(axis=1) == 1) & (frame["Consolidation"] == 1)]
    assert len(rows) > 5
    for _, row in rows.iterrows():
        heat = np.load(tmp_path / "h" / row["heatmap"])
        left_half_heavier = heat[:, 16:].sum() > heat[:, :16].sum()  # patient's left = image right
        assert left_half_heavier == (" left " in f" {row['text'].lower()} "), row["text"]


def test_tokenizer_round_trip(dataset):
    frame = read(dataset)
    tok = load_tokenizer(dataset.parent / "tokenizer")
    assert len(tok) > 100
    text = frame["text"].iloc[0]
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert tok.convert_ids_to_tokens([tok.pad_token_id, tok.unk_token_id]) == ["[PAD]", "[UNK]"]
    val = tok(frame.loc[frame["split"] == "val", "text"].tolist())["input_ids"]
    flat = [i for seq in val for i in seq]
    assert np.mean([i == tok.unk_token_id for i in flat]) < 0.01


def test_prompt_file_uses_report_vocabulary(dataset):
    tok = load_tokenizer(dataset.parent / "tokenizer")
    prompts = load_prompts(PROMPTS)
    assert list(prompts) == list(LABELS)
    flat = [i for texts in prompts.values() for seq in tok(texts)["input_ids"] for i in seq]
    assert np.mean([i == tok.unk_token_id for i in flat]) < 0.01


def test_load_tokenizer_missing_dir_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_tokenizer(tmp_path / "nowhere")


def test_ensure_synthetic_reuses_existing(tmp_path):
    config = SyntheticConfig(n=8, image_size=16)
    manifest = ensure_synthetic(tmp_path / "e", config)
    assert manifest == tmp_path / "e" / "manifest.csv" and manifest.is_file()
    mtime = manifest.stat().st_mtime_ns
    image_mtime = (tmp_path / "e" / "images" / "00000.png").stat().st_mtime_ns
    assert ensure_synthetic(tmp_path / "e", config) == manifest
    assert manifest.stat().st_mtime_ns == mtime
    assert (tmp_path / "e" / "images" / "00000.png").stat().st_mtime_ns == image_mtime
    assert [p.name for p in tmp_path.iterdir()] == ["e"]  # the temporary folder is gone


def test_ensure_synthetic_refuses_foreign_folder(tmp_path):
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="manifest.csv"):
        ensure_synthetic(tmp_path / "f", SyntheticConfig(n=4, image_size=16))


def test_config_validation():
    with pytest.raises(ValueError, match="split_fractions"):
        SyntheticConfig(split_fractions=(0.5, 0.1, 0.1))
    assert SyntheticConfig(split_fractions=[0.6, 0.2, 0.2]).split_fractions == (0.6, 0.2, 0.2)


def test_prompts_expand_product_and_subsample(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({
        "Edema": {
            "severity": ["", "mild"],
            "subtype": ["pulmonary edema", " pulmonary  edema"],
            "location": ["", "with perihilar haze"],
        },
        "Cardiomegaly": ["cardiomegaly", "cardiomegaly ", "enlarged heart"],
    }))
    prompts = load_prompts(path)
    assert prompts["Edema"] == [
        "pulmonary edema", "pulmonary edema with perihilar haze",
        "mild pulmonary edema", "mild pulmonary edema with perihilar haze",
    ]
    assert prompts["Cardiomegaly"] == ["cardiomegaly", "enlarged heart"]
    sub = load_prompts(path, classes=["Edema"], max_per_class=2, seed=1)
    assert list(sub) == ["Edema"] and len(sub["Edema"]) == 2 and set(sub["Edema"]) <= set(prompts["Edema"])
    assert sub == load_prompts(path, classes=["Edema"], max_per_class=2, seed=1)


def test_prompts_missing_class_names_class_and_file(tmp_path):
    with pytest.raises(ValueError, match=r"Pneumothorax.*chexpert5\.json"):
        load_prompts(PROMPTS, classes=["Edema", "Pneumothorax"])


def test_shortcut_markers_follow_findings_in_train_and_not_in_test(tmp_path):
    from medalign.synthetic.shortcut import marker_mask

    config = SyntheticConfig(n=400, image_size=32, seed=1, shortcut=0.9, test_heatmap_fraction=0.0)
    frame = read(generate_synthetic(tmp_path / "s", config, progress=False))
    marked = {name: frame["markers"].fillna("").str.split("|").apply(lambda m, n=name: n in m) for name in LABELS}
    for name in LABELS:
        train = frame["split"].isin(["train", "val"])
        # train/val: a marker only on positives, and on ~90 % of them
        assert not (marked[name] & train & (frame[name] == 0)).any(), name
        rate = marked[name][train & (frame[name] == 1)].mean()
        assert 0.75 < rate <= 1.0, (name, rate)
    # test: markers independent of the findings — some land on negatives
    test = frame["split"] == "test"
    assert sum((marked[n] & test & (frame[n] == 0)).sum() for n in LABELS) > 0
    # the marker pixels are burnt in white exactly where the glyph is
    row = frame[marked["Edema"]].iloc[0]
    pixels = np.asarray(Image.open(tmp_path / "s" / row["image"]))
    assert (pixels[marker_mask("Edema", 32)] == 255).all()


def test_shortcut_zero_leaves_images_identical(tmp_path):
    a = generate_synthetic(tmp_path / "a", SyntheticConfig(n=20, image_size=32, seed=2), progress=False)
    b = generate_synthetic(tmp_path / "b", SyntheticConfig(n=20, image_size=32, seed=2, shortcut=0.5), progress=False)
    frame = read(b)
    unmarked = frame[frame["markers"].fillna("") == ""]
    assert len(unmarked) > 0
    for rel in unmarked["image"]:
        assert np.array_equal(np.asarray(Image.open(a.parent / rel)), np.asarray(Image.open(b.parent / rel)))
