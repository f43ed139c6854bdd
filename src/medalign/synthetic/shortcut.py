"""A controlled shortcut: per-class burn-in markers that co-occur with findings in train/val only.

`medalign synth --shortcut P` stamps a small white text-like glyph (a "burn-in" annotation, a
classic non-pathological shortcut in chest X-rays) at a class-specific place on the border of
an image. In the train and val splits, each finding present in a pair gets its class's marker
with probability P; in the test split markers are drawn independently of the findings, each
with its train-split marginal rate (P × the class's train prevalence). A model that learned
the marker instead of the pathology therefore loses accuracy on the test split, while the
expert heatmaps keep marking the true finding (gaze never falls on the markers).
"""

from __future__ import annotations

import numpy as np

# Marker anchor per class (row, column) as fractions of the image side; the glyph's top-left.
MARKER_ANCHORS = {
    "Atelectasis": (0.03, 0.03),
    "Cardiomegaly": (0.03, 0.80),
    "Consolidation": (0.85, 0.03),
    "Edema": (0.85, 0.80),
    "Pleural Effusion": (0.03, 0.42),
}
# A 5×7-cell glyph per class (1 = white), like a burnt-in letter; distinct shapes per class.
_GLYPHS = {
    "Atelectasis": ["01110", "10001", "10001", "11111", "10001", "10001", "10001"],  # A
    "Cardiomegaly": ["01111", "10000", "10000", "10000", "10000", "10000", "01111"],  # C
    "Consolidation": ["11110", "10001", "10001", "11110", "10100", "10010", "10001"],  # R
    "Edema": ["11111", "10000", "10000", "11110", "10000", "10000", "11111"],  # E
    "Pleural Effusion": ["11110", "10001", "10001", "11110", "10000", "10000", "10000"],  # P
}


def marker_mask(label: str, size: int) -> np.ndarray:
    """(S, S) bool mask of `label`'s glyph at its anchor (glyph height ≈ 12 % of the side)."""
    glyph = np.array([[c == "1" for c in row] for row in _GLYPHS[label]])  # (7, 5)
    cell = max(1, round(0.12 * size / 7))
    big = np.kron(glyph, np.ones((cell, cell), dtype=bool))  # (7·cell, 5·cell)
    top, left = (round(f * size) for f in MARKER_ANCHORS[label])
    top, left = min(top, size - big.shape[0]), min(left, size - big.shape[1])
    mask = np.zeros((size, size), dtype=bool)
    mask[top : top + big.shape[0], left : left + big.shape[1]] = big
    return mask


def draw_markers(
    labels: dict[str, int], split: str, probability: float, prevalence: dict[str, float], rng: np.random.Generator
) -> list[str]:
    """Which classes' markers a pair gets.

    Args:
        labels: the pair's 0/1 label per class.
        split: ``train`` / ``val`` (markers follow the findings) or ``test`` (independent).
        probability: P, the chance a present finding carries its marker in train/val.
        prevalence: train-split share of pairs positive for each class (sets the test rate).
        rng: the pair's own generator (a dedicated stream, so P = 0 leaves images untouched).
    """
    chosen = []
    for label in MARKER_ANCHORS:
        u = rng.random()  # one draw per class in every split keeps streams aligned
        if split == "test":
            if u < probability * prevalence.get(label, 0.0):
                chosen.append(label)
        elif labels.get(label, 0) == 1 and u < probability:
            chosen.append(label)
    return chosen


def stamp(image: np.ndarray, labels: list[str]) -> np.ndarray:
    """The uint8 image with the markers of `labels` burnt in (white)."""
    out = image.copy()
    for label in labels:
        out[marker_mask(label, image.shape[0])] = 255
    return out
