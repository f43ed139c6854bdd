"""The real assets the gaze test bed is built on, read from the `torchxrayvision` wheel's ``data/`` folder.

| asset (file) | what the test bed takes from it |
|---|---|
| lung masks (``semantic_masks_v7labs_lungs.zip``, 517 masks) | the lung fields of each image |
| NIH ChestX-ray14 boxes (``BBox_List_2017.csv.gz``, 1024² px) | position and size of atelectasis, cardiomegaly, effusion, nodule/mass; infiltrate boxes for the unreported distractor lesions |
| RSNA Pneumonia boxes (``kaggle_stage_2_train_labels.csv.zip``, 1024² px) | position and size of consolidation |
| VinDr-CXR boxes with reader ids (``vinbigdata-train.csv.gz``) | reader-to-reader variation: how one radiologist's box of a lesion differs from another's |
| PadChest (``PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz``) | per class, how often a report sentence stating the finding also states its location |
| Open-I reports (``NLMCXR_reports.tgz``) | the wording of the positive sentences |

Every table is read once per process (`functools.cache`) and sorted before use, so what the
generator draws depends on the seed only. Boxes are (x0, y0, x1, y1) as fractions of the image side.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from medalign.synthetic.openi import reports_root

# Test-bed classes → their sources. Consolidation takes RSNA's pneumonia (airspace opacity) boxes.
TESTBED_LABELS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Nodule", "Pleural Effusion")
NIH_CLASSES = {"Atelectasis": ("Atelectasis",), "Cardiomegaly": ("Cardiomegaly",), "Nodule": ("Nodule", "Mass"),
               "Pleural Effusion": ("Effusion",), "distractor": ("Infiltrate",)}
PADCHEST_CLASSES = {"Atelectasis": ("atelectasis", "laminar atelectasis", "lobar atelectasis"),
                    "Cardiomegaly": ("cardiomegaly",), "Consolidation": ("consolidation",),
                    "Nodule": ("nodule", "multiple nodules", "mass"), "Pleural Effusion": ("pleural effusion",)}
OPENI_KEYWORDS = {"Atelectasis": ("atelectasis",), "Cardiomegaly": ("cardiomegaly",),
                  "Consolidation": ("consolidation",), "Nodule": ("nodule", "mass"),
                  "Pleural Effusion": ("effusion",)}
LOCATION_WORDS = re.compile(r"\b(right|left|bilateral|bibasilar|bibasal|base|bases|basilar|upper|lower|middle|mid|"
                            r"lobe|lobes|apical|apex|apices|lingula|lingular|hilar|perihilar|midlung|lung|lungs|"
                            r"hemithorax|side|sided|lateral|posterior|anterior)\b", re.IGNORECASE)
SIDE_WORDS = re.compile(r"\b(right|left|bilateral)\b", re.IGNORECASE)
ZONE_WORDS = re.compile(r"\b(upper|lower|middle)\b", re.IGNORECASE)
_SENTENCE, _ITEM = re.compile(r"\[([^\[\]]*)\]"), re.compile(r"'([^']*)'")
_EXCLUDE = re.compile(r"\b(no|pericardial|bibasilar|bibasal|not|without|negative|resolved|resolution|clear|cannot|can't|could|may|might|"
                      r"possible|possibly|versus|vs|exclude|excluded|compared|comparison|prior|previous|"
                      r"interval|lateral view|decubitus|ct|recommend|followup|follow-up)\b|\d|xxxx|\?", re.IGNORECASE)


def data_root() -> Path:
    """torchxrayvision's ``data/`` folder (the error says how to install it when it is missing)."""
    return reports_root(None)


@dataclass(frozen=True)
class Assets:
    """What the generator draws from, one array or table per concept.

    Attributes:
        boxes: per test-bed class (and ``"distractor"``), (K, 4) float64 boxes in image fractions.
        reader_jitter: (J, 4) VinDr reader-to-reader differences of one lesion's box:
            (Δx centre / w, Δy centre / h, log w ratio, log h ratio).
        localised: per class, PadChest's share of sentences stating the finding that also state a location.
        sentences: per class, {"located": [...], "unlocated": [...]} real Open-I sentences.
        mask_names: the lung-mask files inside the zip, sorted.
    """

    boxes: dict[str, np.ndarray]
    reader_jitter: np.ndarray
    localised: dict[str, float]
    sentences: dict[str, dict[str, tuple[str, ...]]]
    mask_names: tuple[str, ...]


def nih_boxes(root: Path) -> dict[str, np.ndarray]:
    """NIH ChestX-ray14 boxes (1024² images) per test-bed class, as image fractions, sorted."""
    table = pd.read_csv(root / "BBox_List_2017.csv.gz")
    xywh = table[["Bbox [x", "y", "w", "h]"]].to_numpy(dtype=np.float64) / 1024.0
    xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    return {name: _sorted(xyxy[table["Finding Label"].isin(classes).to_numpy()]) for name, classes in NIH_CLASSES.items()}


def rsna_boxes(root: Path) -> np.ndarray:
    """RSNA Pneumonia Detection boxes (1024² images) as image fractions, sorted."""
    with zipfile.ZipFile(root / "kaggle_stage_2_train_labels.csv.zip") as archive:
        table = pd.read_csv(archive.open("stage_2_train_labels.csv"))
    table = table[table["Target"] == 1]
    xywh = table[["x", "y", "width", "height"]].to_numpy(dtype=np.float64) / 1024.0
    return _sorted(np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1))


def vindr_reader_jitter(root: Path) -> np.ndarray:
    """(J, 4) differences between two VinDr readers' boxes of the same class on the same image.

    Only image-class pairs where each of two readers drew exactly one box are used, so the
    pairing is unambiguous. Scale-free (the table has no image sizes).
    """
    table = pd.read_csv(root / "vinbigdata-train.csv.gz").dropna(subset=["x_min"])
    table = table.sort_values(["image_id", "class_name", "rad_id", "x_min", "y_min"], kind="stable")
    one_box = table.groupby(["image_id", "class_name", "rad_id"])["x_min"].transform("size") == 1
    table = table[one_box]
    rank = table.groupby(["image_id", "class_name"]).cumcount()
    first = table[rank == 0].set_index(["image_id", "class_name"])
    second = table[rank == 1].set_index(["image_id", "class_name"])
    a, b = first.loc[second.index], second  # the first two readers of each lesion
    wa, ha = (a.x_max - a.x_min).to_numpy(), (a.y_max - a.y_min).to_numpy()
    wb, hb = (b.x_max - b.x_min).to_numpy(), (b.y_max - b.y_min).to_numpy()
    ok = np.minimum.reduce([wa, ha, wb, hb]) > 0
    dx = ((b.x_min + b.x_max).to_numpy() - (a.x_min + a.x_max).to_numpy()) / 2 / np.where(ok, wa, 1)
    dy = ((b.y_min + b.y_max).to_numpy() - (a.y_min + a.y_max).to_numpy()) / 2 / np.where(ok, ha, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rows = np.stack([dx, dy, np.log(wb / wa), np.log(hb / ha)], axis=1)[ok]
    return np.clip(rows, -1.0, 1.0)  # a few outliers (disagreeing readers) capped


def padchest_localised(root: Path) -> dict[str, float]:
    """Per class, PadChest's share of report sentences labelled with it that also carry a ``loc`` label."""
    column = pd.read_csv(root / "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz",
                         usecols=["LabelsLocalizationsBySentence"])["LabelsLocalizationsBySentence"]
    stated = {name: 0 for name in PADCHEST_CLASSES}
    located = {name: 0 for name in PADCHEST_CLASSES}
    lookup = {label: name for name, classes in PADCHEST_CLASSES.items() for label in classes}
    for cell in column.dropna().unique():  # repeated reports (one per image) count once
        for sentence in _SENTENCE.findall(cell):  # "['pleural effusion', 'loc basal'], [...]"
            labels = [x.strip() for x in _ITEM.findall(sentence)]
            has_loc = any(x.startswith("loc ") for x in labels)
            for name in {lookup[x] for x in labels if x in lookup}:
                stated[name] += 1
                located[name] += has_loc
    return {name: located[name] / max(stated[name], 1) for name in PADCHEST_CLASSES}


def openi_sentences(root: Path) -> dict[str, dict[str, tuple[str, ...]]]:
    """Real Open-I sentences stating one test-bed class (and no other), split by whether they state a location.

    Kept: affirmative, unhedged sentences of at most 16 words with no numbers, placeholders
    (``XXXX``) or comparisons. "Located" sentences name a side (right / left / bilateral) that the
    generator rewrites to the finding's; "unlocated" ones have no location word at all.
    """
    from medalign.prepare.openi import read_xml_reports

    reports = read_xml_reports(root)
    texts = [t for pair in zip(reports["findings"], reports["impression"]) for t in pair if isinstance(t, str) and t]
    pool = sorted({s.strip() for t in texts for s in re.split(r"(?<=\.)\s+", t) if s.strip()})
    out: dict[str, dict[str, list[str]]] = {name: {"located": [], "unlocated": []} for name in OPENI_KEYWORDS}
    for sentence in pool:
        lower = sentence.lower()
        if _EXCLUDE.search(lower) or len(lower.split()) > 16 or not lower.endswith("."):
            continue
        hits = [name for name, words in OPENI_KEYWORDS.items() if any(re.search(rf"\b{w}s?\b", lower) for w in words)]
        if len(hits) != 1:
            continue
        if not LOCATION_WORDS.search(lower):
            out[hits[0]]["unlocated"].append(sentence)
        elif len(SIDE_WORDS.findall(lower)) == 1 and hits[0] != "Cardiomegaly":
            out[hits[0]]["located"].append(sentence)
    return {name: {k: tuple(v) for k, v in kinds.items()} for name, kinds in out.items()}


def _sorted(boxes: np.ndarray) -> np.ndarray:
    boxes = np.clip(boxes, 0.0, 1.0)
    boxes = boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]
    return boxes[np.lexsort(boxes.T[::-1])]


@cache
def load_assets() -> Assets:
    """Read every asset once per process."""
    root = data_root()
    boxes = nih_boxes(root)
    boxes["Consolidation"] = rsna_boxes(root)
    widths = boxes["distractor"][:, 2] - boxes["distractor"][:, 0]
    boxes["distractor"] = boxes["distractor"][widths < 0.35]  # one-lung infiltrates (the wider ones span both lungs)
    with zipfile.ZipFile(root / "semantic_masks_v7labs_lungs.zip") as archive:
        names = tuple(sorted(n for n in archive.namelist() if not n.endswith("/")))
    return Assets(boxes=boxes, reader_jitter=vindr_reader_jitter(root), localised=padchest_localised(root),
                  sentences=openi_sentences(root), mask_names=names)


@cache
def lung_mask(index: int, size: int) -> np.ndarray:
    """(size, size) float64 lung field in [0, 1] from real mask `index` (of `Assets.mask_names`).

    The mask is binarised right after decoding (so JPEG decoder differences do not matter),
    enlarged by nearest-neighbour to 4·size and block-averaged down to `size`: soft edges,
    computed in numpy only.
    """
    from PIL import Image

    name = load_assets().mask_names[index]
    with zipfile.ZipFile(data_root() / "semantic_masks_v7labs_lungs.zip") as archive:
        image = Image.open(io.BytesIO(archive.read(name))).convert("L")
    binary = Image.fromarray(((np.asarray(image) > 127) * 255).astype(np.uint8))
    big = np.asarray(binary.resize((4 * size, 4 * size), Image.NEAREST), dtype=np.float64) / 255.0
    return big.reshape(size, 4, size, 4).mean(axis=(1, 3))
