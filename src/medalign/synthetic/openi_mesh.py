"""Open-I MeSH terms → what the rendered Open-I image shows (labels and distractor findings).

An Open-I report's MeSH "major" terms read ``Heading/qualifier/qualifier``, e.g.
``Cardiomegaly/mild``, ``Pulmonary Atelectasis/base/left``, ``Opacity/lung/base/bilateral``,
``normal``. `MESH_MAP` is the one table that says which heading (optionally only with a given
qualifier) becomes which finding: a CheXpert competition class (a label), a distractor pattern
(`findings.DISTRACTORS`, drawn but not a label) or ``normal``. A heading in no rule
(e.g. ``Fractures, Bone``, ``Technical Quality of Image Unsatisfactory``, ``No Indexing``) is not
drawn. The table is documented in docs/openi_rendered.md.

Severity, side and zone come from the qualifiers where the terms say (`SEVERITY_WORDS`,
`SIDE_WORDS`, `ZONE_WORDS`); otherwise from the report's seeded generator. The generator draws
the same numbers whether or not a qualifier overrides them, so one term's qualifiers never
shift another finding's random draws.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from medalign.synthetic.findings import DISTRACTORS, LABELS, NO_FINDING, Finding, sample_finding

NORMAL = "normal"
# (MeSH heading, qualifier required or None, target): first matching rule wins.
MESH_MAP: tuple[tuple[str, str | None, str], ...] = (
    ("Cardiomegaly", None, "Cardiomegaly"),
    ("Cardiac Shadow", "enlarged", "Cardiomegaly"),
    ("Pulmonary Atelectasis", None, "Atelectasis"),
    ("Consolidation", None, "Consolidation"),
    ("Pulmonary Edema", None, "Edema"),
    ("Pulmonary Congestion", None, "Edema"),  # CheXpert labeler: "pulmonary/vascular congestion" → Edema
    ("Pleural Effusion", None, "Pleural Effusion"),
    ("normal", None, NORMAL),
    ("Nodule", None, "nodule"),
    ("Mass", None, "nodule"),
    ("Calcified Granuloma", None, "nodule"),
    ("Granuloma", None, "nodule"),
    ("Granulomatous Disease", None, "nodule"),
    ("Calcinosis", "lung", "nodule"),
    ("Calcinosis", "lymph nodes", "nodule"),
    ("Density", "lung", "nodule"),
    ("Calcinosis", "aorta", "aorta"),
    ("Calcinosis", "aorta, thoracic", "aorta"),
    ("Aorta", None, "aorta"),
    ("Aorta, Thoracic", None, "aorta"),
    ("Atherosclerosis", None, "aorta"),
    ("Opacity", None, "opacity"),
    ("Airspace Disease", None, "opacity"),
    ("Infiltrate", None, "opacity"),
    ("Pneumonia", None, "opacity"),
    ("Cicatrix", None, "scarring"),
    ("Markings", None, "scarring"),
    ("Thickening", None, "scarring"),
    ("Pulmonary Fibrosis", None, "scarring"),
    ("Fibrosis", None, "scarring"),
    ("Lung Diseases, Interstitial", None, "scarring"),
    ("Lung", "hyperdistention", "hyperinflation"),
    ("Emphysema", None, "hyperinflation"),
    ("Pulmonary Emphysema", None, "hyperinflation"),
    ("Pulmonary Disease, Chronic Obstructive", None, "hyperinflation"),
    ("Lung, Hyperlucent", None, "hyperinflation"),
    ("Diaphragm", "flattened", "hyperinflation"),
    ("Lung", "hypoinflation", "low_volumes"),
    ("Diaphragm", "elevated", "low_volumes"),
    ("Scoliosis", None, "spine_curve"),
    ("Kyphosis", None, "spine_curve"),
    ("Thoracic Vertebrae", "degenerative", "degenerative"),
    ("Spine", "degenerative", "degenerative"),
    ("Osteophyte", None, "degenerative"),
    ("Spondylosis", None, "degenerative"),
    ("Arthritis", None, "degenerative"),
    ("Catheters, Indwelling", None, "device"),
    ("Surgical Instruments", None, "device"),
    ("Implanted Medical Device", None, "device"),
    ("Tube, Inserted", None, "device"),
    ("Medical Device", None, "device"),
    ("Stents", None, "device"),
    ("Foreign Bodies", None, "device"),
    ("Spinal Fusion", None, "device"),
)
SEVERITY_WORDS = {"mild": 0, "borderline": 0, "small": 0, "minimal": 0, "trace": 0,
                  "moderate": 1, "severe": 2, "large": 2, "extensive": 2, "massive": 2}
SIDE_WORDS = {"right": "right", "left": "left", "bilateral": "bilateral", "lingula": "left", "middle lobe": "right"}
ZONE_WORDS = {"upper lobe": "upper", "apex": "upper", "lower lobe": "lower", "base": "lower",
              "middle lobe": "lower", "lingula": "lower", "hilum": "hilum"}
MULTIPLE_COUNT = 3  # nodules drawn for a "multiple" qualifier


def parse_term(term: str) -> tuple[str, list[str]]:
    """``"Pleural Effusion/right/small"`` → (``"Pleural Effusion"``, [``"right"``, ``"small"``])."""
    heading, *qualifiers = [part.strip() for part in str(term).split("/")]
    return heading, [q.lower() for q in qualifiers]


def map_term(term: str) -> str | None:
    """The target of one MeSH term by `MESH_MAP` (a label, a distractor or ``normal``); None if unmapped."""
    heading, qualifiers = parse_term(term)
    for rule_heading, qualifier, target in MESH_MAP:
        if heading.lower() == rule_heading.lower() and (qualifier is None or qualifier in qualifiers):
            return target
    return None


def mesh_labels(terms: Sequence[str]) -> dict[str, int]:
    """Manifest label columns of a report: 1/0 per CheXpert class, and No Finding.

    No Finding is 1 iff the report is indexed ``normal`` and no term maps to a class or a
    distractor (distractor findings such as a granuloma make a report not "normal").
    """
    targets = {map_term(t) for t in terms} - {None}
    labels = {name: int(name in targets) for name in LABELS}
    labels[NO_FINDING] = int(targets == {NORMAL})
    return labels


def _qualified(finding: Finding, qualifiers: list[str]) -> Finding:
    """`finding` with the severity / side / zone that `qualifiers` state (any not stated keep theirs)."""
    changes: dict = {}
    severities = [SEVERITY_WORDS[q] for q in qualifiers if q in SEVERITY_WORDS]
    if severities:
        changes["severity"] = max(severities)
    sides = {SIDE_WORDS[q] for q in qualifiers if q in SIDE_WORDS}
    if sides and finding.label not in ("Cardiomegaly", "Edema"):
        changes["side"] = "bilateral" if "bilateral" in sides or sides == {"right", "left"} else sides.pop()
    zones = [ZONE_WORDS[q] for q in qualifiers if q in ZONE_WORDS]
    if zones and finding.label in ("Consolidation", *DISTRACTORS):
        zone = zones[0]
        changes["zone"] = "lower" if finding.label == "Consolidation" and zone == "hilum" else zone
    if "multiple" in qualifiers and finding.label in DISTRACTORS:
        changes["count"] = MULTIPLE_COUNT
    return replace(finding, **changes)


def _sample_distractor(label: str, rng: np.random.Generator) -> Finding:
    severity = int(rng.integers(3))
    side = str(rng.choice(["right", "left"]))
    zone = str(rng.choice(["upper", "lower"]))
    return Finding(label, severity, side=side, zone=zone)


def findings_from_mesh(terms: Sequence[str], rng: np.random.Generator) -> list[Finding]:
    """What to render for a report with MeSH `terms`: CheXpert classes (LABELS order), then distractors.

    Terms with the same target are merged: their qualifiers are pooled (the largest severity
    wins; right + left is bilateral). A bilateral consolidation becomes one finding per lung.
    """
    qualifiers: dict[str, list[str]] = {}
    for term in terms:
        target = map_term(term)
        if target is not None and target != NORMAL:
            qualifiers.setdefault(target, []).extend(parse_term(term)[1])
    findings: list[Finding] = []
    for target in (*LABELS, *DISTRACTORS):
        if target not in qualifiers:
            continue
        drawn = sample_finding(target, rng) if target in LABELS else _sample_distractor(target, rng)
        finding = _qualified(drawn, qualifiers[target])
        if finding.label == "Consolidation" and finding.side == "bilateral":
            findings += [replace(finding, side="right"), replace(finding, side="left")]
        else:
            findings.append(finding)
    return findings
