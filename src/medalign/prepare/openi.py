"""Open-I / Indiana University chest X-ray collection, in either published layout.

Kaggle layout ("Chest X-rays (Indiana University)")::

    indiana_reports.csv      uid, MeSH, Problems, image, indication, comparison, findings, impression
    indiana_projections.csv  uid, filename, projection ∈ {Frontal, Lateral}
    images/images_normalized/<filename>          (e.g. 1_IM-0001-4001.dcm.png)

NLM layout (Open-I download)::

    ecgen-radiology/<n>.xml  (or NLMCXR_reports.tgz)   AbstractText Label="FINDINGS" / "IMPRESSION",
                                                       parentImage id="CXR10_IM-0002-1001"
    NLMCXR_png/<parentImage id>.png  (or NLMCXR_dcm/<parentImage id>.dcm)

Image ids come in several forms: the XMLs use ``CXR10_IM-0002-1001``, ``CXR1021_IM-0017-1001-0001``
and, for report 1, ``CXR1_1_IM-0001-3001``; Kaggle's file names are ``10_IM-0002-1001.dcm.png``;
copies add ``.png`` / ``.dcm`` extensions or folder prefixes. Every form maps to one key,
``CXR<uid>_IM-...`` (`image_key`), which is the manifest ``id`` in both layouts; ``study_id`` and
``subject_id`` are ``CXR<uid>`` in both. An id in no known form is an error naming its file.

One row per frontal image with its report's findings and impression (configurable). The NLM XMLs
do not say which view an image is: pass ``--projections indiana_projections.csv`` to keep
frontal views, otherwise every image is kept (noted in the report); an image with no entry there
is dropped as "no projection in indiana_projections.csv" (counted and listed apart from lateral
views). The DICOM headers (``nlmcxr_dicom_metadata.csv.gz``, as shipped with torchxrayvision:
``imageid``, ``View Position``) catch laterals the other sources call frontal (13 of the 3,671
first-frontal images of the rendered set): with ``views: frontal`` an image whose View Position
is LL, RL, LATERAL or LARGE LATERAL is dropped as "lateral by DICOM View Position" (an image
without a View Position, 2,586 of 7,469 in that table, is judged by the other sources alone).
The table is read from ``--dicom-metadata``, else from ``<root>/nlmcxr_dicom_metadata.csv.gz``;
without one a note says so. Reports whose chosen sections are empty are dropped (listed in the
report). Report text is HTML-unescaped (two NLM reports carry ``&gt;``/``&lt;`` escaped twice).

Labels (OpenI-5, the eCLIP paper's Fig. 4 probes): the five CheXpert competition classes and
No Finding, 1/0 from the report's MeSH major terms through `medalign.synthetic.openi_mesh`
(``MeSH`` column of indiana_reports.csv, ``;``-separated; ``<major>`` elements of the XMLs).

Open-I has no official split: every row is ``test`` unless ``--val-fraction`` /
``--test-fraction`` split reports with a seed.
"""

from __future__ import annotations

import html
import re
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterator, Literal

import numpy as np
import pandas as pd

from medalign.prepare.base import AdapterError, Drops, Layout, Prepared, clean_text, drop, index_files, split_by_group
from medalign.prepare.options import adapter, arguments_adder

NAME = "openi"
VERSION = "Open-I (Kaggle: indiana_reports.csv + indiana_projections.csv; or NLM: ecgen-radiology/*.xml + NLMCXR_png/)"
REPORT_COLUMNS = ["uid", "findings", "impression"]
DICOM_METADATA = "nlmcxr_dicom_metadata.csv.gz"
OPENI5 = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion", "No Finding"]  # label columns
LATERAL_VIEWS = ("LL", "RL", "LATERAL", "LARGE LATERAL")  # DICOM View Position values of lateral views
PROJECTION_COLUMNS = ["uid", "filename", "projection"]
LAYOUT = Layout(NAME, VERSION)
Section = Literal["findings", "impression"]
_IMAGE_ID = re.compile(r"^(?:CXR)?(?P<uid>\d+)_(?:\d+_)?(?P<image>IM-\d+(?:-\d+)*)$")
_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm")


def image_key(value: object) -> str | None:
    """The canonical image id ``CXR<uid>_IM-...`` of any published form; None if `value` is in none.

    ``CXR1_1_IM-0001-3001``, ``CXR1_IM-0001-3001.png``, ``1_IM-0001-3001.dcm.png`` and
    ``images/CXR1_1_IM-0001-3001.dcm`` all give ``CXR1_IM-0001-3001``.
    """
    name = str(value).strip().replace("\\", "/").rsplit("/", 1)[-1]
    while name.lower().endswith(_SUFFIXES):
        name = name[: name.rfind(".")]
    match = _IMAGE_ID.match(name)
    return f"CXR{match['uid']}_{match['image']}" if match else None


def parse_report_xml(data: bytes | str) -> dict:
    """One NLM report: ``uid``, ``findings``, ``impression`` (cleaned, "" if absent), ``images``, ``mesh``."""
    tree = ET.fromstring(data)
    sections = {el.get("Label", "").lower(): _text(el.text) for el in tree.iter("AbstractText")}
    uid = tree.find("uId")
    return {
        "uid": uid.get("id") if uid is not None else "",
        "findings": sections.get("findings", ""),
        "impression": sections.get("impression", ""),
        "images": [el.get("id") for el in tree.iter("parentImage")],
        "mesh": [clean_text(el.text) for el in tree.iter("major")],
    }


def _text(value: object) -> str:
    """Cleaned section text with HTML entities decoded (``&gt;`` → ``>``; some reports are escaped twice)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return clean_text(html.unescape(str(value)))


def openi5_labels(terms: list[str]) -> dict[str, int]:
    """OpenI-5 label columns (five CheXpert classes + No Finding, 1/0) of a report's MeSH major terms."""
    from medalign.synthetic.openi_mesh import mesh_labels

    return mesh_labels([t for t in terms if t])


def lateral_by_dicom(path: Path) -> set[str]:
    """Canonical ids of the images whose DICOM View Position is a lateral view."""
    table = pd.read_csv(path, usecols=["imageid", "View Position"], dtype=str)
    lateral = table["View Position"].fillna("").str.strip().str.upper().isin(LATERAL_VIEWS)
    return {k for k in table.loc[lateral, "imageid"].map(image_key) if k}


def iter_report_xmls(root: Path) -> Iterator[tuple[str, bytes]]:
    """(name, XML bytes) of every report under ``ecgen-radiology/`` or inside ``NLMCXR_reports.tgz``."""
    folder = root / "ecgen-radiology"
    if folder.is_dir():
        for path in sorted(folder.glob("*.xml")):
            yield path.name, path.read_bytes()
        return
    archive = root / "NLMCXR_reports.tgz"
    if not archive.is_file():
        raise AdapterError(f"{NAME}: neither {folder} nor {archive} exists; expected the {VERSION} layout")
    with tarfile.open(archive, "r:gz") as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            if member.isfile() and member.name.endswith(".xml"):
                yield member.name, tar.extractfile(member).read()


def read_xml_reports(root: Path) -> pd.DataFrame:
    """All NLM reports, one row each: uid, findings, impression, images (list), mesh (list), _file."""
    rows = []
    for name, data in iter_report_xmls(root):
        try:
            rows.append(parse_report_xml(data) | {"_file": name})
        except ET.ParseError as err:
            raise AdapterError(f"{NAME}: {name} is not valid XML: {err}") from err
    return pd.DataFrame(rows, columns=["uid", "findings", "impression", "images", "mesh", "_file"])


@adapter
def build(
    root: Path,
    *,
    layout: Literal["auto", "kaggle", "xml"] = "auto",
    sections: list[Section] = ("findings", "impression"),
    views: Literal["frontal", "all"] = "frontal",
    projections: str | None = None,
    dicom_metadata: str | None = None,
    val_fraction: float = 0.0,
    test_fraction: float | None = None,
    seed: int = 0,
) -> Prepared:
    """Read the reports and image list of either layout; one row per kept image.

    Args:
        root: the Open-I folder.
        layout: which published layout root holds (auto: kaggle when indiana_reports.csv is there).
        sections: report sections, in order.
        views: keep frontal images only, or all.
        projections: indiana_projections.csv for view filtering in the xml layout.
        dicom_metadata: nlmcxr_dicom_metadata.csv.gz (DICOM View Position per image); default:
            the file in root, if there.
        val_fraction: fraction of reports in val (default: none).
        test_fraction: fraction of reports in test (default: all rows are test).
        seed: seed of the report split.
    """
    sections = [sections] if isinstance(sections, str) else list(sections)
    if layout == "auto":
        layout = "kaggle" if LAYOUT.find_or_none(root, "indiana_reports.csv") else "xml"
    notes: list[str] = []
    dropped = Drops()
    if layout == "kaggle":
        images, rows_in = _kaggle_images(root, dropped)
    else:
        images = _xml_images(root)
        rows_in = len(images)
        if projections:
            view_of = _projections(LAYOUT.read_path(Path(projections), PROJECTION_COLUMNS))
            images["projection"] = images["id"].map(view_of)
        else:
            images["projection"] = "Frontal"  # unknown: kept
            if views == "frontal":
                notes.append("views unknown in the NLM XMLs (no --projections): all images kept")
    if views == "frontal":
        no_view = images["projection"].isna().to_numpy()
        images = drop(images, no_view, "no projection in indiana_projections.csv", dropped, value="id")
        images = drop(images, images["projection"] != "Frontal", "not a frontal view", dropped, value="projection")
        metadata = Path(dicom_metadata) if dicom_metadata else root / DICOM_METADATA
        if metadata.is_file():
            lateral = images["id"].isin(lateral_by_dicom(metadata)).to_numpy()
            images = drop(images, lateral, "lateral by DICOM View Position", dropped, value="id")
        elif dicom_metadata:
            raise AdapterError(f"{NAME}: --dicom-metadata {metadata} does not exist")
        else:
            notes.append(f"no {DICOM_METADATA} in {root} (--dicom-metadata): laterals are judged by the projection "
                         "table alone (torchxrayvision ships the file in its data/ folder)")
    images = images.assign(
        text=[" ".join(t for t in (_text(r[s]) for s in sections) if t) for _, r in images[list(sections)].iterrows()]
    )
    images = drop(images, images["text"] == "", f"report has no {'/'.join(sections)}", dropped, value="study_id")
    study = images["study_id"].astype(str)
    split = split_by_group(study, val_fraction, test_fraction, seed) if test_fraction is not None else "test"
    labels = pd.DataFrame([openi5_labels(list(terms)) for terms in images["mesh"]], index=images.index, columns=OPENI5)
    frame = pd.DataFrame(
        {
            "image": images["image"].to_numpy(),
            "text": images["text"].to_numpy(),
            "split": split,
            "id": images["id"].to_numpy(),
            "study_id": study.to_numpy(),
            "subject_id": study.to_numpy(),
            "_file": images["_file"].to_numpy(),
            "_row": images["_row"].to_numpy(),
            **{c: labels[c].astype(float).to_numpy() for c in labels.columns},
        }
    )
    return Prepared(NAME, frame, list(labels.columns), rows_in, dropped, notes)


add_arguments = arguments_adder(build)


def _projections(table: pd.DataFrame) -> dict[str, str]:
    """Canonical image id → projection, from indiana_projections.csv rows (unknown id forms are errors)."""
    keys = table["filename"].map(image_key)
    bad = keys.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AdapterError(f"{NAME}: {table['_file'].iloc[i]} row {i + 1}: filename {table['filename'].iloc[i]!r} "
                           "is not an Open-I image id (expected e.g. 1_IM-0001-4001.dcm.png)")  # fmt: skip
    return dict(zip(keys, table["projection"].where(table["projection"].notna(), None)))


def _kaggle_images(root: Path, dropped: Drops) -> tuple[pd.DataFrame, int]:
    """One row per indiana_projections.csv row with its report; rows without a report are dropped."""
    reports = LAYOUT.read(root, "indiana_reports.csv", required=REPORT_COLUMNS)
    projections = LAYOUT.read(root, "indiana_projections.csv", required=PROJECTION_COLUMNS)
    view_of = _projections(projections)
    images = projections.merge(reports.drop(columns=["_file", "_row"]), on="uid", how="left", indicator=True)
    images["id"] = images["filename"].map(image_key)
    images["projection"] = images["id"].map(view_of)
    images["study_id"] = "CXR" + images["uid"].astype(str)
    images["image"] = [str(root / "images" / "images_normalized" / f) for f in images["filename"]]
    mesh = images["MeSH"] if "MeSH" in images.columns else pd.Series("", index=images.index)
    images["mesh"] = [[t.strip() for t in str(m).split(";")] if pd.notna(m) else [] for m in mesh]
    images = drop(images, images["_merge"] != "both", "no report for this uid in indiana_reports.csv", dropped, value="uid")
    return images, len(projections)


def _xml_images(root: Path) -> pd.DataFrame:
    """One row per parentImage of every NLM report XML, with its canonical id and image path."""
    reports = read_xml_reports(root).explode("images").rename(columns={"images": "image_id"})
    images = reports.dropna(subset=["image_id"]).reset_index(drop=True)
    images["id"] = images["image_id"].map(image_key)
    bad = images["id"].isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AdapterError(f"{NAME}: {images['_file'].iloc[i]}: parentImage id {images['image_id'].iloc[i]!r} "
                           "is not an Open-I image id (expected e.g. CXR10_IM-0002-1001)")  # fmt: skip
    files = {image_key(name): path for name, path in index_files(root, ["NLMCXR_png/*.png", "NLMCXR_dcm/*.dcm"]).items()}
    images["image"] = [str(files.get(k, root / "NLMCXR_png" / f"{i}.png")) for k, i in zip(images["id"], images["image_id"])]
    images["study_id"] = images["uid"].astype(str)
    images["_row"] = np.nan  # an XML file has no rows: errors name the file
    return images
