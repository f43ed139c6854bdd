"""What a synthetic chest X-ray shows: the findings sampled per image-report pair.

Both the image renderer (`synthetic_images.py`) and the report writer
(`synthetic_reports.py`) consume the same `Finding` list, so what is drawn and what is
written always agree.

Sides are the *patient's* sides, as in radiology reports: on a frontal (PA) image the
patient's right lung is on the image's left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# CheXpert competition findings (column names as in CheXpert / MIMIC-CXR-JPG).
LABELS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
NO_FINDING = "No Finding"
SEVERITIES = ("mild", "moderate", "severe")
# Findings outside LABELS with their own patterns (synthetic/distractors.py), used by the rendered
# Open-I set for the MeSH terms that are not CheXpert competition classes (synthetic/openi_mesh.py).
DISTRACTORS = ("nodule", "opacity", "scarring", "hyperinflation", "low_volumes", "spine_curve", "degenerative",
               "aorta", "device")


@dataclass(frozen=True)
class Finding:
    label: str  # one of LABELS, or of DISTRACTORS
    severity: int  # 0 mild, 1 moderate, 2 severe (index into SEVERITIES)
    side: str = ""  # "right" | "left" | "bilateral" (patient's side) | "" when not meaningful
    zone: str = ""  # "upper" | "lower" for consolidation, "base" for atelectasis/effusion, "" otherwise
    air_bronchograms: bool = False  # consolidation only: darker branching lines drawn inside the blob
    count: int = 1  # distractors only: lesions drawn (e.g. 3 for "multiple" nodules)


def sample_finding(label: str, rng: np.random.Generator) -> Finding:
    """Draw severity and location for one finding of class `label`."""
    severity = int(rng.integers(3))
    if label == "Cardiomegaly":
        return Finding(label, severity)
    if label == "Edema":
        return Finding(label, severity, side="bilateral", zone="perihilar")
    if label == "Pleural Effusion":
        side = str(rng.choice(["right", "left", "bilateral"], p=[0.4, 0.3, 0.3]))
        return Finding(label, severity, side=side, zone="base")
    if label == "Atelectasis":
        side = str(rng.choice(["right", "left", "bilateral"], p=[0.4, 0.4, 0.2]))
        return Finding(label, severity, side=side, zone="base")
    if label == "Consolidation":
        side = str(rng.choice(["right", "left"]))
        zone = str(rng.choice(["upper", "lower"]))
        return Finding(label, severity, side=side, zone=zone, air_bronchograms=bool(rng.random() < 0.5))
    raise ValueError(f"unknown finding label {label!r}; expected one of {LABELS}")


def sample_findings(
    rng: np.random.Generator, normal_fraction: float, multi_fraction: float
) -> list[Finding]:
    """Draw the findings of one pair: none (normal), two, or exactly one, sorted by LABELS order."""
    u = rng.random()
    if u < normal_fraction:
        n_findings = 0
    elif u < normal_fraction + multi_fraction:
        n_findings = 2
    else:
        n_findings = 1
    picked = sorted(rng.choice(len(LABELS), size=n_findings, replace=False).tolist())
    return [sample_finding(LABELS[k], rng) for k in picked]


def label_vector(findings: list[Finding]) -> dict[str, int]:
    """Manifest label columns for a pair: 1/0 per LABELS entry plus "No Finding"."""
    present = {f.label for f in findings}
    labels = {name: int(name in present) for name in LABELS}
    labels[NO_FINDING] = int(not present)
    return labels
