"""Lesions of the gaze test bed: where they are (real boxes), how they are drawn, where the reader looks.

A lesion's box is a real radiologist's box of its class (`assets.Assets.boxes`), drawn as is;
the reader who "wrote the report" looked at their own box of the same lesion, which differs
from it by a real VinDr reader-to-reader difference (`assets.Assets.reader_jitter`). Distractors
are unreported lesions with the geometry of real infiltrate boxes: drawn in the image, absent
from the report and from the gaze. Coordinates are image fractions (x right, y down); the
patient's right lung is on the image's left (x < 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medalign.synthetic.images import _ellipse, _fill, _segment, _sigmoid

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1), image fractions


@dataclass(frozen=True)
class Lesion:
    label: str  # a test-bed class, or "distractor"
    box: Box  # the drawn lesion
    reader_box: Box  # where the reporting reader looked (gaze); equal to `box` for distractors
    side: str  # "right" | "left" | "bilateral" (patient's side; "" for cardiomegaly)
    zone: str  # "upper" | "middle" | "lower" ("" for cardiomegaly)
    located: bool = True  # the report states the side / zone


def side_and_zone(label: str, box: Box) -> tuple[str, str]:
    """Patient's side and lung zone of a box (cardiomegaly has neither)."""
    if label == "Cardiomegaly":
        return "", ""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    if box[0] < 0.45 and box[2] > 0.55:
        side = "bilateral"
    else:
        side = "right" if cx < 0.5 else "left"
    zone = "upper" if cy < 0.38 else ("middle" if cy < 0.55 else "lower")
    return side, zone


def jitter_box(box: Box, jitter: np.ndarray) -> Box:
    """`box` moved and resized by one reader-to-reader difference (Δx/w, Δy/h, log w, log h)."""
    w, h = box[2] - box[0], box[3] - box[1]
    cx, cy = (box[0] + box[2]) / 2 + jitter[0] * w, (box[1] + box[3]) / 2 + jitter[1] * h
    w, h = w * np.exp(jitter[2]), h * np.exp(jitter[3])
    return (float(cx - w / 2), float(cy - h / 2), float(cx + w / 2), float(cy + h / 2))


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    axis = (np.arange(size) + 0.5) / size
    return np.meshgrid(axis, axis)  # x, y: (S, S)


def draw_lesion(img: np.ndarray, lung: np.ndarray, lesion: Lesion, rng: np.random.Generator) -> np.ndarray:
    """Draw one lesion on `img` (S, S) float in its box; lung lesions are clipped to the lung field `lung` (S, S)."""
    x, y = _grid(img.shape[0])
    x0, y0, x1, y1 = lesion.box
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, max((x1 - x0) / 2, 0.012), max((y1 - y0) / 2, 0.012)
    inside = np.clip(1.6 * lung, 0.0, 1.0)
    if lesion.label == "Cardiomegaly":  # the enlarged heart fills the box
        return _fill(img, _ellipse(x, y, cx, cy + 0.1 * ry, rx, 0.8 * ry, 0.01), 0.68, 0.95)
    if lesion.label == "Nodule":
        r = min(rx, ry)
        return _fill(img, _ellipse(x, y, cx, cy, r, r, 0.006), 0.86, 1.0)
    if lesion.label == "Atelectasis":  # plate-like band across the box
        slope = rng.uniform(-0.3, 0.3) * ry
        band = _segment(x, y, x0, cy - slope, x1, cy + slope, max(0.25 * ry, 0.01))
        return _fill(img, band * inside, 0.76, 0.9)
    if lesion.label == "Pleural Effusion":  # dense fluid filling the box's lower part, meniscus up the wall
        level = y0 + 0.45 * (y1 - y0)
        rect = _sigmoid((rx - np.abs(x - cx)) / 0.012) * _sigmoid((y1 + 0.03 - y) / 0.012)
        return _fill(img, rect * _sigmoid((y - level) / 0.015) * np.clip(2 * lung + 0.3, 0, 1), 0.58, 0.95)
    # Consolidation and distractors: an irregular airspace opacity filling the box's ellipse.
    theta = np.arctan2(y - cy, x - cx)
    phase = rng.uniform(0, 2 * np.pi, size=2)
    wobble = 1 + 0.15 * np.sin(3 * theta + phase[0]) + 0.08 * np.sin(5 * theta + phase[1])
    r = np.hypot((x - cx) / rx, (y - cy) / ry)
    blob = _sigmoid((wobble - r) * min(rx, ry) / 0.01) * inside
    value, alpha = (0.74, 0.9) if lesion.label == "Consolidation" else (0.70, 0.75)
    return _fill(img, blob, value, alpha)


def fixations(lesion: Lesion, rng: np.random.Generator) -> list[tuple[float, float, float]]:
    """Gaze fixations (u, v, weight) in the [-1, 1] grid of `images.render_heatmap` around the reader's box."""
    x0, y0, x1, y1 = lesion.reader_box
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    points = [(cx, cy, 1.0)]
    if lesion.label == "Cardiomegaly":  # the heart borders
        points += [(x0 + 0.1 * w, cy + 0.1 * h, 0.7), (x1 - 0.1 * w, cy + 0.1 * h, 0.7)]
    elif lesion.label == "Pleural Effusion":  # the costophrenic angle and the fluid level
        points = [(cx, y0 + 0.75 * h, 1.0), (cx, y0 + 0.45 * h, 0.6)]
    else:
        points += [(cx + rng.uniform(-0.4, 0.4) * w, cy + rng.uniform(-0.4, 0.4) * h, 0.5)]
    return [(2 * px - 1, 2 * py - 1, wt) for px, py, wt in points]
