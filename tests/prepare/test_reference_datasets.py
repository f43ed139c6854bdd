"""mBRSET and the cone-effect paper's natural references (Recipes5k, DAQUAR, COCO-QA, Fakeddit) on
format-exact fixtures; the metadata text styles of HAM10000, BRSET and mBRSET."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from medalign.commands.prepare import run
from medalign.data.manifest import read_manifest
from medalign.prepare import REGISTRY, AdapterError, brset, cocoqa, daquar, fakeddit, ham10000, mbrset, recipes5k
from tests.prepare import fixtures


def _manifest(tmp_path, name, root, *extra):
    path = run([name, "--root", str(root), "--out", str(tmp_path / "out"), *extra])
    return read_manifest(path, allow_outside_paths=True).frame, json.loads((path.parent / "prepare_report.json").read_text())


def test_all_registered():
    for name in ("mbrset", "recipes5k", "daquar", "coco-qa", "fakeddit"):
        assert name in REGISTRY


def test_mbrset(tmp_path):
    frame, report = _manifest(tmp_path, "mbrset", fixtures.mbrset(tmp_path / "m"))
    by_id = frame.set_index("id")
    assert list(by_id.index) == ["1.1.jpg", "1.2.jpg", "2.1.jpg"]
    assert by_id["image"].str.endswith(".jpg").all()
    assert by_id.loc["1.1.jpg", "diabetic_retinopathy"] == 0 and by_id.loc["1.2.jpg", "diabetic_retinopathy"] == 1  # final_icdr 2 > 0
    assert np.isnan(by_id.loc["2.1.jpg", "diabetic_retinopathy"])  # blank grade stays blank
    assert by_id.loc["1.2.jpg", "text"] == ("Fundus photo of the left eye of a 61-year-old female patient; "
                                       "diabetes for 10.0 years, insulin: yes, comorbidities: systemic hypertension.")
    assert by_id.loc["1.1.jpg", "subject_id"] == by_id.loc["1.2.jpg", "subject_id"]  # one patient, one split
    assert by_id.loc["1.1.jpg", "split"] == by_id.loc["1.2.jpg", "split"]
    restrepo = mbrset.build(tmp_path / "m", text_style="restrepo").frame.set_index("id")
    assert restrepo.loc["2.1.jpg", "text"] == ("An image from the right eye of a male patient, aged no age reported years, "
                                          "with comorbidities: Nephropathy, with no diabetes duration reported, "
                                          "not using insulin.")


def test_recipes5k(tmp_path):
    frame, _ = _manifest(tmp_path, "recipes5k", fixtures.recipes5k(tmp_path / "r"))
    assert list(frame["split"]) == ["train", "train", "val", "test"]
    assert list(frame["text"]) == ["onion, flour, egg, beer", "rice, salmon, nori", "onion, breadcrumbs, oil",
                                   "rice, tuna, nori, cucumber"]  # fmt: skip
    assert frame[["onion_rings", "sushi"]].to_numpy().tolist() == [[1, 0], [0, 1], [1, 0], [0, 1]]
    assert frame["image"].iloc[0].endswith("images/onion_rings/0_beer_onion_rings_hostedLargeUrl.jpg")
    simplified = recipes5k.build(tmp_path / "r", simplified=True).frame
    assert simplified["text"].iloc[1] == "rice, fish, nori"


def test_daquar(tmp_path):
    frame, _ = _manifest(tmp_path, "daquar", fixtures.daquar(tmp_path / "d"))
    assert list(frame["text"]) == [
        "what is on the right side of the black telephone and on the left side of the red chair?",
        "what are the objects on the table?", "how many chairs are?", "what is under the table?"]
    assert list(frame["study_id"]) == ["image3", "image1", "image1", "image5"]
    assert frame["image"].iloc[1].endswith("nyu_depth_images/image1.png")
    answers = ["2", "bottle", "cup", "desk", "plate"]  # classes seen in train; test's chair/carpet unseen
    assert sorted(c for c in frame.columns if c in answers) == answers
    assert frame.loc[1, ["cup", "plate", "bottle", "desk"]].tolist() == [1, 1, 1, 0]  # multi-label
    assert frame.loc[3, answers].sum() == 0 and list(frame["split"]) == ["train", "train", "train", "test"]
    with pytest.raises(daquar.AdapterError, match="in the image"):
        (tmp_path / "d" / "qa.894.raw.test.txt").write_text("what is this ?\nchair\n")
        daquar.build(tmp_path / "d")


def test_cocoqa(tmp_path):
    frame, report = _manifest(tmp_path, "coco-qa", fixtures.cocoqa(tmp_path / "c"))
    assert report["dropped"] == {"answer never seen in train": 1}  # "umbrella" only in test
    assert list(frame["text"]) == ["what is the color of the bus", "how many giraffes are standing",
                                   "what is parked on the street", "what is the man holding"]  # fmt: skip
    assert list(frame["question_type"]) == ["color", "number", "object", "object"]
    assert frame["image"].iloc[0].endswith("train2014/COCO_train2014_000000000009.jpg")
    assert frame["image"].iloc[3].endswith("val2014/COCO_val2014_000000000042.jpg")
    assert frame[["bus", "red", "two"]].to_numpy().tolist() == [[0, 1, 0], [0, 0, 1], [1, 0, 0], [1, 0, 0]]
    split = cocoqa.build(tmp_path / "c", val_fraction=0.5).frame
    assert split.groupby("study_id")["split"].nunique().max() == 1  # an image is in one split


def test_fakeddit(tmp_path):
    frame, report = _manifest(tmp_path, "fakeddit", fixtures.fakeddit(tmp_path / "f"))
    assert report["dropped"] == {"no image (hasImage false or no image_url)": 1, "empty clean_title": 1}
    assert list(frame["id"]) == ["c3t1gq", "8ql0ap", "0aa1bb", "1cc2dd"]
    assert list(frame["split"]) == ["train", "train", "val", "test"]
    assert list(frame["2_way_label"]) == [1, 0, 1, 0]
    assert frame["image"].iloc[0].endswith("public_image_set/c3t1gq.jpg")
    half = fakeddit.build(tmp_path / "f", fraction=0.5, seed=0).frame
    assert (half["split"] == "train").sum() == 2 and set(half.loc[half["split"] == "train", "2_way_label"]) == {0, 1}


def test_restrepo_text_styles(tmp_path):
    ham = ham10000.build(fixtures.ham10000(tmp_path / "h"), text_style="restrepo").frame.set_index("id")
    assert ham.loc["ISIC_0027419", "text"] == "Patient diagnosed via histo. Age: 80 years. Sex: male. Localization: scalp."
    assert ham.loc["ISIC_0026769", "text"] == "Patient diagnosed via consensus. Age: No data reported years. Sex: female. Localization: back."
    root = fixtures.brset(tmp_path / "b")
    table = pd.read_csv(root / "labels.csv")
    for column in brset.FINDINGS:
        table[column] = 0
    table.loc[1, "macular_edema"] = 1
    table.to_csv(root / "labels.csv", index=False)
    text = brset.build(root, text_style="restrepo").frame.set_index("id").loc["img00002", "text"]
    assert text.startswith("An image from the left eye of a female patient, aged 48.0 years, with comorbidities: diabetes1, "
                           "diabetes diagnosed for 12.0 years, using insulin. The optic disc is present, vessels are present, "
                           "and the macula is present. Conditions include macular edema: present, scar: absent")
    assert text.endswith("increased cup disc ratio: absent, and other conditions: absent.")
    assert "diabetic retinopathy" not in text.lower()
    table.drop(columns=["scar"]).to_csv(root / "labels.csv", index=False)
    with pytest.raises(AdapterError, match="scar"):
        brset.build(root, text_style="restrepo")
