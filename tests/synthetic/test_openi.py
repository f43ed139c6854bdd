"""The rendered Open-I set: counts against the XML files, manifest contract, determinism."""

import re
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medalign.data.manifest import read_manifest
from medalign.synthetic.openi import IMAGE_SOURCE, OpenIConfig, frontal_image, generate_openi, select_reports

txv = pytest.importorskip("torchxrayvision", reason="the Open-I XMLs ship with torchxrayvision (dev extra)")

DATA = Path(txv.__file__).parent / "data"
LABELS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion", "No Finding"]
CONFIG = OpenIConfig(image_size=64, seed=1, max_reports=300, heatmap_fraction=0.1, vocab_size=1500)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return generate_openi(tmp_path_factory.mktemp("openi") / "a", CONFIG, progress=False)


def _raw_reports() -> list[dict]:
    """Every XML read with regular expressions (not the adapter's parser): uid, image ids, text present."""
    out = []
    with tarfile.open(DATA / "NLMCXR_reports.tgz", "r:gz") as tar:
        for member in tar.getmembers():
            if not member.name.endswith(".xml"):
                continue
            xml = tar.extractfile(member).read().decode("utf-8")
            texts = re.findall(r'<AbstractText Label="(?:FINDINGS|IMPRESSION)">([^<]*)</AbstractText>', xml)
            out.append(dict(uid=re.search(r'<uId id="([^"]+)"', xml)[1],
                            images=re.findall(r'<parentImage id="([^"]+)"', xml),
                            has_text=any(t.strip() for t in texts)))
    return out


def test_counts_match_the_xml_files():
    raw = _raw_reports()
    assert len(raw) == 3955
    tsne = pd.read_csv(DATA / "nlmcxr_tsne_pa.csv.gz").set_index("imageid")["tsne-view"].to_dict()
    dicom = pd.read_csv(DATA / "nlmcxr_dicom_metadata.csv.gz", usecols=["imageid", "View Position"])
    dicom_lateral = set(dicom.loc[dicom["View Position"].isin(["LL", "RL", "LATERAL", "LARGE LATERAL"]), "imageid"])
    assert len(dicom_lateral) == 717 + 119 + 29 + 2

    def lateral(image: str) -> bool:  # XML ids repeat report 1's uid (CXR1_1_IM-...); the DICOM table does not
        return tsne.get(image) == "L" or re.sub(r"^CXR1_1_", "CXR1_", image) in dicom_lateral

    no_image = [r for r in raw if not r["images"]]
    lateral_only = [r for r in raw if r["images"] and all(lateral(i) for i in r["images"])]
    kept = [r for r in raw if r["images"] and r not in lateral_only and r["has_text"]]
    reports, dropped, notes = select_reports(DATA)
    assert dropped["no image"] == len(no_image) == 104
    assert dropped["only a lateral image"] == len(lateral_only) == 165  # 157 by the t-SNE table alone
    assert len(reports) == len(kept) == 3664 and set(reports["uid"]) == {r["uid"] for r in kept}
    assert sum(dropped.values()) + len(reports) == 3955 and notes == []
    chosen = dict(zip(reports["uid"], reports["image_id"]))
    assert all(chosen[r["uid"]] == next(i for i in r["images"] if not lateral(i)) for r in kept)
    assert sum(chosen[r["uid"]] != r["images"][0] for r in kept) > 300  # first image lateral: a later one
    assert not reports["text"].str.contains("&gt;|&lt;|&amp;").any()  # two reports escape entities twice


def test_frontal_rule():
    assert frontal_image(["a", "b"], {"a": "PA"}) == "a"
    assert frontal_image(["a", "b"], {"a": "L"}) == "b"
    assert frontal_image(["a"], {"a": "L"}) is None and frontal_image([], {}) is None
    assert frontal_image(["a", "b"], {}) == "a"  # no t-SNE entry: first image
    assert frontal_image(["a", "b"], {}, {"a"}) == "b" and frontal_image(["a", "b"], {"a": "L"}, {"b"}) is None


def test_manifest_round_trips_through_read_manifest(dataset):
    raw = pd.read_csv(dataset, keep_default_na=False)
    manifest = read_manifest(dataset, LABELS)
    assert len(manifest.frame) == len(raw) == CONFIG.max_reports
    for column in ["text", "split", "id", "study_id", *LABELS]:
        assert manifest.frame[column].astype(str).tolist() == raw[column].astype(str).tolist(), column
    assert (raw["image_source"] == IMAGE_SOURCE).all()
    assert raw["id"].str.fullmatch(r"CXR\d+_IM-\d+(-\d+)+").all() and raw["id"].is_unique
    assert (raw["study_id"] == raw["subject_id"]).all() and raw["study_id"].is_unique  # one frontal per report
    assert [i.split("_")[0] for i in raw["id"]] == raw["study_id"].tolist()
    assert (raw[LABELS[:5]].sum(axis=1).gt(0) & raw["No Finding"].eq(1)).sum() == 0
    with_heatmap = raw[raw["heatmap"] != ""]
    assert set(with_heatmap["split"]) <= {"train", "test"}
    assert len(with_heatmap[with_heatmap["split"] == "train"]) == round(0.1 * (raw["split"] == "train").sum())
    heat = np.load(dataset.parent / with_heatmap["heatmap"].iloc[0])
    assert heat.shape == (64, 64) and heat.dtype == np.float32 and heat.max() == pytest.approx(1.0)
    assert "Rendered images with real text" in (dataset.parent / "README.md").read_text()


def test_same_seed_same_bytes_and_split_by_seed(dataset, tmp_path):
    small = generate_openi(tmp_path / "b", OpenIConfig(image_size=64, seed=1, max_reports=20, vocab_size=500),
                           progress=False)
    a, b = pd.read_csv(dataset, keep_default_na=False), pd.read_csv(small, keep_default_na=False)
    first = a[a["id"].isin(b["id"])].reset_index(drop=True)
    assert first["id"].tolist() == b["id"].tolist()  # max_reports keeps the lowest uids
    for rel in b["image"]:  # a report's image does not depend on how many reports are written
        assert (dataset.parent / rel).read_bytes() == (small.parent / rel).read_bytes()
    other = pd.read_csv(generate_openi(tmp_path / "c", OpenIConfig(image_size=64, seed=2, max_reports=20, vocab_size=500),
                                       progress=False), keep_default_na=False)  # fmt: skip
    assert other["id"].tolist() == b["id"].tolist()  # the same 20 reports …
    assert other["split"].tolist() != b["split"].tolist()  # … split differently by another seed
