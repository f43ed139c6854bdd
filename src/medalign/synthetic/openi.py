"""Rendered Open-I: real Open-I report text on rendered chest images (`medalign synth --source openi`).

The 3,955 Open-I report XMLs ship with `torchxrayvision` (no images). Each report with a
frontal image and a non-empty FINDINGS/IMPRESSION gets one row: its frontal image id, a rendered
chest image whose findings follow the report's MeSH terms (`openi_mesh.MESH_MAP`: the CheXpert
competition classes are labels, other terms are drawn as distractor patterns), and the real
report text (findings + impression). **Only the text is real**; the images are drawn by
`images.render_image`. Reports are parsed by the Open-I adapter (`prepare.openi`).

Frontal view (the XMLs record no view): the report's first ``parentImage`` that neither
torchxrayvision's t-SNE-derived view table (``nlmcxr_tsne_pa.csv.gz``, which labels the first
image of 3,851 reports ``PA`` or ``L``) nor the DICOM View Position (``nlmcxr_dicom_metadata.csv.gz``:
LL, RL, LATERAL, LARGE LATERAL) marks lateral; a report without such an image has no frontal
view and is dropped. Open-I studies are a PA + a lateral view, so this gives one frontal image
per report (docs/openi_rendered.md). Report texts are HTML-unescaped by the adapter's parser.

Layout under `out_dir`: ``manifest.csv`` (image, text, split, heatmap, id, study_id, subject_id,
the CheXpert classes, No Finding, ``distractors``, ``mesh``, ``image_source`` = ``rendered``),
``images/<id>.png``, ``heatmaps/<id>.npy``, ``tokenizer/`` (WordPiece on the train reports),
``openi.json`` (config, counts, drops) and ``README.md``. ``id`` is the adapter's canonical image
id ``CXR<uid>_IM-…``; ``study_id`` = ``subject_id`` = ``CXR<uid>``. Splits are by report from a
seeded shuffle; report ``CXR<n>`` draws its findings and image from ``default_rng([seed, n, …])``.
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from medalign.synthetic.findings import DISTRACTORS, LABELS, NO_FINDING, Finding
from medalign.synthetic.generate import SPLITS, _heatmap_subset, ensure_generated, finish_generated
from medalign.synthetic.images import render_heatmap, render_image
from medalign.synthetic.openi_mesh import findings_from_mesh, mesh_labels

GENERATOR_VERSION = 2  # bump when the view rule, the MeSH map or the rendering changes (2: DICOM laterals, entities)
TSNE_VIEWS = "nlmcxr_tsne_pa.csv.gz"
DICOM_VIEWS = "nlmcxr_dicom_metadata.csv.gz"
_FINDINGS, _IMAGE = 0, 1  # per-report random streams
IMAGE_SOURCE = "rendered"  # the manifest's image_source column: images are drawn, text is real


@dataclass
class OpenIConfig:
    image_size: int = 64  # square side in pixels
    seed: int = 0
    heatmap_fraction: float = 0.05  # fraction of TRAIN rows with a rendered gaze heatmap (eCLIP)
    test_heatmap_fraction: float = 0.2  # fraction of TEST rows with gaze (saliency–gaze evaluation)
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train/val/test, by report
    vocab_size: int = 4000  # WordPiece vocabulary size (upper bound)
    max_reports: int | None = None  # keep the first N usable reports by uid number (tests, quick looks)
    reports: str | None = None  # folder with NLMCXR_reports.tgz or ecgen-radiology/; default torchxrayvision's

    def __post_init__(self) -> None:
        self.split_fractions = tuple(float(f) for f in self.split_fractions)
        if self.image_size < 8:
            raise ValueError(f"OpenIConfig.image_size must be ≥ 8, got {self.image_size}")
        if len(self.split_fractions) != 3 or min(self.split_fractions) < 0 or abs(sum(self.split_fractions) - 1) > 1e-6:
            raise ValueError(f"OpenIConfig.split_fractions must be 3 non-negative numbers summing to 1, got {self.split_fractions}")
        if self.split_fractions[0] == 0:
            raise ValueError("OpenIConfig.split_fractions: the train fraction must be > 0 (the tokenizer trains on it)")
        for name in ("heatmap_fraction", "test_heatmap_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"OpenIConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.max_reports is not None and self.max_reports < 1:
            raise ValueError(f"OpenIConfig.max_reports must be ≥ 1 or None, got {self.max_reports}")


def reports_root(reports: str | None = None) -> Path:
    """The folder holding the Open-I XMLs: `reports`, or the installed torchxrayvision's ``data/``."""
    if reports:
        return Path(reports)
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the rendered Open-I set reads the Open-I report XMLs shipped with torchxrayvision: "
            "pip install 'medalign[dev]' (or torchxrayvision), or pass reports=<folder with NLMCXR_reports.tgz>"
        )
    return Path(spec.submodule_search_locations[0]) / "data"


def frontal_image(images: list[str], tsne_view: dict[str, str], dicom_lateral: frozenset[str] | set[str] = frozenset()) -> str | None:
    """The report's frontal image id: its first image that neither the t-SNE table nor the DICOM header calls lateral."""
    return next((i for i in images if tsne_view.get(i) != "L" and i not in dicom_lateral), None)


def select_reports(root: Path) -> tuple[pd.DataFrame, Counter, list[str]]:
    """Reports that get a row: uid, number, text, findings, mesh, image_id, id; with drops and notes."""
    from medalign.prepare.openi import image_key, lateral_by_dicom, read_xml_reports

    reports = read_xml_reports(root)
    notes: list[str] = []
    tsne_path = root / TSNE_VIEWS
    tsne_view: dict[str, str] = {}
    if tsne_path.is_file():
        table = pd.read_csv(tsne_path)
        tsne_view = dict(zip(table["imageid"], table["tsne-view"]))
    else:
        notes.append(f"no {TSNE_VIEWS} next to the reports: the first image of every report is taken as frontal")
    dicom_path = root / DICOM_VIEWS
    lateral_keys = lateral_by_dicom(dicom_path) if dicom_path.is_file() else set()
    if not dicom_path.is_file():
        notes.append(f"no {DICOM_VIEWS} next to the reports: DICOM View Position not checked")
    reports["image_id"] = [frontal_image(list(images), tsne_view, {i for i in images if image_key(i) in lateral_keys})
                           for images in reports["images"]]
    reports["text"] = [" ".join(t for t in (f, i) if t) for f, i in zip(reports["findings"], reports["impression"])]
    reports["number"] = reports["uid"].str.extract(r"(\d+)$")[0].astype(int)
    reports = reports.sort_values("number", kind="stable").reset_index(drop=True)
    dropped: Counter = Counter()
    keep = np.ones(len(reports), dtype=bool)
    for reason, mask in (("no image", reports["images"].map(len).eq(0).to_numpy()),
                         ("only a lateral image", reports["image_id"].isna().to_numpy()),
                         ("no findings or impression", reports["text"].eq("").to_numpy())):
        mask = mask & keep
        dropped[reason] = int(mask.sum())
        keep &= ~mask
    reports = reports[keep].reset_index(drop=True)
    reports["id"] = reports["image_id"].map(image_key)
    return reports, dropped, notes


def _counts(frame: pd.DataFrame, reports: pd.DataFrame) -> dict:
    """Rows, heatmaps, positives and distractors per split, and the retrieval counts (distinct reports)."""
    counts: dict = {"rows": len(frame), "distinct_texts": int(frame["text"].nunique()),
                    "with_findings": int(reports["findings"].ne("").sum()),
                    "distinct_findings": int(reports.loc[reports["findings"].ne(""), "findings"].nunique())}
    for split in SPLITS:
        rows = frame[frame["split"] == split]
        distractors = Counter(d for cell in rows["distractors"] for d in cell.split("|") if d)
        counts[split] = {"rows": len(rows), "distinct_texts": int(rows["text"].nunique()),
                         "heatmaps": int((rows["heatmap"] != "").sum()),
                         **{name: int(rows[name].sum()) for name in (*LABELS, NO_FINDING)},
                         "distractors": {d: distractors[d] for d in DISTRACTORS}}
    return counts


def generate_openi(out_dir: str | Path, config: OpenIConfig | None = None, progress: bool = True) -> Path:
    """Write the rendered Open-I set under `out_dir`; returns its manifest (written last)."""
    from medalign.prepare.base import split_by_group

    config = config or OpenIConfig()
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "heatmaps").mkdir(exist_ok=True)
    reports, dropped, notes = select_reports(reports_root(config.reports))
    n_read = len(reports) + sum(dropped.values())
    if config.max_reports is not None:
        reports = reports.iloc[: config.max_reports].reset_index(drop=True)
    _, val, test = config.split_fractions
    splits = split_by_group(reports["uid"], val, test, config.seed)  # (N,) one report per row
    with_heatmap = _heatmap_subset(splits, config)
    rows = []
    items = reports.itertuples(index=False)
    if progress:
        from tqdm import tqdm

        items = tqdm(items, total=len(reports), desc="rendered Open-I", unit="report")
    for k, report in enumerate(items):
        findings = findings_from_mesh(report.mesh, np.random.default_rng([config.seed, report.number, _FINDINGS]))
        rendered = render_image(findings, config.image_size, np.random.default_rng([config.seed, report.number, _IMAGE]))
        image_rel = f"images/{report.id}.png"
        Image.fromarray(rendered.image).save(out / image_rel)
        heatmap_rel = ""
        if k in with_heatmap:
            heatmap_rel = f"heatmaps/{report.id}.npy"
            np.save(out / heatmap_rel, render_heatmap(rendered))
        rows.append(dict(image=image_rel, text=report.text, split=splits[k], heatmap=heatmap_rel, id=report.id,
                         study_id=report.uid, subject_id=report.uid, **mesh_labels(report.mesh),
                         distractors=_distractor_cell(findings), mesh="; ".join(report.mesh),
                         image_source=IMAGE_SOURCE))
    frame = pd.DataFrame(rows)
    summary = dict(generator_version=GENERATOR_VERSION, config=asdict(config), counts=_counts(frame, reports),
                   reports_read=n_read,
                   dropped=dict(dropped), notes=notes)
    files = {"openi.json": json.dumps(summary, indent=2) + "\n", "README.md": _readme(summary)}
    return finish_generated(out, frame, config.vocab_size, files)


def ensure_openi(out_dir: str | Path, config: OpenIConfig | None = None) -> Path:
    """Return `out_dir/manifest.csv`, generating the rendered Open-I set first if absent (DDP-safe)."""
    config = config or OpenIConfig()
    return ensure_generated(out_dir, lambda tmp: generate_openi(tmp, config, progress=False), "rendered Open-I set")


def _distractor_cell(findings: list[Finding]) -> str:
    return "|".join(dict.fromkeys(f.label for f in findings if f.label in DISTRACTORS))


def _readme(summary: dict) -> str:
    counts = summary["counts"]
    split_line = ", ".join(f"{s} {counts[s]['rows']}" for s in SPLITS)
    return (
        "# Rendered Open-I (medalign synth --source openi)\n\n"
        "**Rendered images with real text.** Each row pairs a real Open-I report (FINDINGS + IMPRESSION, "
        "from the NLM XMLs shipped with torchxrayvision) with a *rendered* chest image whose findings follow "
        "the report's MeSH terms. The images are not X-rays: only the text side is real. Labels are the "
        "CheXpert competition classes derived from MeSH (medalign.synthetic.openi_mesh.MESH_MAP; "
        "docs/openi_rendered.md); `distractors` lists the other drawn findings; `image_source` is "
        f"`{IMAGE_SOURCE}` on every row.\n\n"
        f"Rows (one frontal image per report): {counts['rows']} ({split_line}); distinct report texts: "
        f"{counts['distinct_texts']}. Dropped reports: {summary['dropped']}.\n\n"
        "Open-I: Demner-Fushman et al., JAMIA 2016 (doi:10.1093/jamia/ocv080).\n"
    )
