"""Open-I / Indiana University chest X-ray collection, in either published layout.

Kaggle layout ("Chest X-rays (Indiana University)")::

    indiana_reports.csv      uid, MeSH, Problems, image, indication, comparison, findings, impression
    indiana_projections.csv  uid, filename, projection ∈ {Frontal, Lateral}
    images/images_normalized/<filename>          (e.g. 1_IM-0001-4001.dcm.png)

NLM layout (Open-I download)::

    ecgen-radiology/<n>.xml  (or NLMCXR_reports.tgz)   AbstractText Label="FINDINGS" / "IMPRESSION",
                                                       parentImage id="CXR1_1_IM-0001-4001"
    NLMCXR_png/<parentImage id>.png

One row per frontal image with its report's findings and impression (configurable). The NLM
XMLs do not say which view an image is: pass ``--projections indiana_projections.csv`` to keep
frontal views, otherwise every image is kept (noted in the report). Reports whose chosen
sections are empty are dropped. Open-I has no official split: every row is ``test`` unless
``--val-fraction`` / ``--test-fraction`` split reports with a seed.
"""

from __future__ import annotations

import argparse
import tarfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Iterator

import pandas as pd

from medalign.prepare.base import AdapterError, Prepared, clean_text, drop, find_file, read_table, split_by_group

NAME = "openi"
VERSION = "Open-I (Kaggle: indiana_reports.csv + indiana_projections.csv; or NLM: ecgen-radiology/*.xml + NLMCXR_png/)"
REPORT_COLUMNS = ["uid", "findings", "impression"]
PROJECTION_COLUMNS = ["uid", "filename", "projection"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layout", choices=["auto", "kaggle", "xml"], default="auto", help="which published layout --root holds")
    parser.add_argument("--sections", nargs="+", choices=["findings", "impression"], default=["findings", "impression"])
    parser.add_argument("--views", choices=["frontal", "all"], default="frontal")
    parser.add_argument("--projections", default=None, help="indiana_projections.csv for view filtering in the xml layout")
    parser.add_argument("--val-fraction", type=float, default=0.0, help="fraction of reports in val (default: none)")
    parser.add_argument("--test-fraction", type=float, default=None, help="fraction in test (default: all rows are test)")


def parse_report_xml(data: bytes | str) -> dict:
    """One NLM report: ``uid``, ``findings``, ``impression`` (cleaned, "" if absent), ``images``, ``mesh``."""
    tree = ET.fromstring(data)
    sections = {el.get("Label", "").lower(): clean_text(el.text) for el in tree.iter("AbstractText")}
    uid = tree.find("uId")
    return {
        "uid": uid.get("id") if uid is not None else "",
        "findings": sections.get("findings", ""),
        "impression": sections.get("impression", ""),
        "images": [el.get("id") for el in tree.iter("parentImage")],
        "mesh": [clean_text(el.text) for el in tree.iter("major")],
    }


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
    """All NLM reports, one row each: uid, findings, impression, images (list), mesh (list)."""
    rows = []
    for name, data in iter_report_xmls(root):
        try:
            rows.append(parse_report_xml(data))
        except ET.ParseError as err:
            raise AdapterError(f"{NAME}: {name} is not valid XML: {err}") from err
    return pd.DataFrame(rows, columns=["uid", "findings", "impression", "images", "mesh"])


def build(root: Path, args: argparse.Namespace) -> Prepared:
    layout = args.layout
    if layout == "auto":
        layout = "kaggle" if (root / "indiana_reports.csv").is_file() else "xml"
    notes: list[str] = []
    if layout == "kaggle":
        reports = read_table(find_file(root, ["indiana_reports.csv"], NAME, VERSION), NAME, VERSION, REPORT_COLUMNS)
        projections = read_table(find_file(root, ["indiana_projections.csv"], NAME, VERSION), NAME, VERSION, PROJECTION_COLUMNS)
        images = projections.merge(reports, on="uid", how="inner")
        images["image"] = [str(root / "images" / "images_normalized" / f) for f in images["filename"]]
        images["id"] = images["filename"]
    else:
        reports = read_xml_reports(root).explode("images").rename(columns={"images": "image_id"})
        images = reports.dropna(subset=["image_id"]).reset_index(drop=True)
        images["image"] = [str(root / "NLMCXR_png" / f"{i}.png") for i in images["image_id"]]
        images["id"] = images["image_id"]
        if args.projections:
            projections = read_table(Path(args.projections), NAME, VERSION, PROJECTION_COLUMNS)
            # Kaggle's "1_IM-0001-4001.dcm.png" is NLM's "CXR1_1_IM-0001-4001".
            view_of = dict(zip("CXR" + projections["filename"].str.replace(".dcm.png", "", regex=False), projections["projection"]))
            images["projection"] = images["image_id"].map(view_of)
        else:
            images["projection"] = "Frontal"  # unknown: kept
            if args.views == "frontal":
                notes.append("views unknown in the NLM XMLs (no --projections): all images kept")
    dropped: Counter = Counter()
    rows_in = len(images)
    if args.views == "frontal":
        images = drop(images, images["projection"] != "Frontal", "not a frontal view", dropped)
    images["text"] = [
        " ".join(t for t in (clean_text(r[s]) for s in args.sections) if t) for _, r in images[args.sections].iterrows()
    ]
    images = drop(images, images["text"] == "", f"report has no {'/'.join(args.sections)}", dropped)
    uid = images["uid"].astype(str)
    split = split_by_group(uid, args.val_fraction, args.test_fraction, args.seed) if args.test_fraction is not None else "test"
    frame = pd.DataFrame(
        {
            "image": images["image"].to_numpy(),
            "text": images["text"].to_numpy(),
            "split": split,
            "id": images["id"].astype(str).to_numpy(),
            "study_id": uid.to_numpy(),
            "subject_id": uid.to_numpy(),
        }
    )
    return Prepared(NAME, frame, [], rows_in, dropped, notes)
