"""Patterns of the non-CheXpert findings ("distractors") drawn in the rendered Open-I set.

Each pattern in `findings.DISTRACTORS` has its own look, distinct from the five CheXpert
classes, so a model can tell a report's extra MeSH findings (a granuloma, scoliosis, a catheter)
from its labelled ones. They share the anatomical grid and helpers of `images.py`; every
pattern adds gaze fixations where a reader would look. Sides are the patient's (right = u < 0).

| pattern | drawn as |
|---|---|
| nodule | `count` small dense round blobs (granuloma / nodule / mass), larger with severity |
| opacity | patchy, streaky hazy smudges in one zone (no sharp edge, unlike consolidation) |
| scarring | thin bright linear strands at the apex or base (cicatrix, markings, fibrosis) |
| hyperinflation | darker (hyperlucent) lungs with a dark band over flattened domes |
| low_volumes | raised, dense domes and crowded bright bases (hypoinflation) |
| spine_curve | a bright spinal column bowed to one side (scoliosis) |
| degenerative | a straight spinal column with bright bony spurs at each level |
| aorta | a widened, tortuous aortic knob with a calcified rim |
| device | a thin very bright catheter line from the neck into the chest |
"""

from __future__ import annotations

import numpy as np

from medalign.synthetic.findings import Finding
from medalign.synthetic.images import LATERAL, LUNG_RX, LUNG_X, _ellipse, _fill, _segment, _sigmoid

_ZONE_Y = {"upper": -0.32, "lower": 0.08, "hilum": -0.08, "": -0.1}  # row of a lung zone's centre


def _sides(f: Finding) -> tuple[str, ...]:
    return ("right", "left") if f.side == "bilateral" else (f.side or "right",)


def _nodule(img, u, v, f: Finding, rng, lung, fix):
    r = (0.035, 0.05, 0.075)[f.severity]
    for k in range(f.count):
        side = _sides(f)[k % len(_sides(f))]
        cx = LUNG_X[side] + rng.uniform(-0.16, 0.16)
        cy = _ZONE_Y[f.zone] + rng.uniform(-0.14, 0.14)
        img = _fill(img, _ellipse(u, v, cx, cy, r, r, 0.008), 0.88, 1.0)  # calcified: near bone density
        fix.append((cx, cy, 0.9))
    return img


def _opacity(img, u, v, f: Finding, rng, lung, fix):
    for side in _sides(f):
        cx, cy = LUNG_X[side] + rng.uniform(-0.05, 0.05), _ZONE_Y[f.zone] + rng.uniform(-0.04, 0.04)
        for _ in range(3 + f.severity):
            x0, y0 = cx + rng.uniform(-0.12, 0.12), cy + rng.uniform(-0.08, 0.08)
            angle = rng.uniform(0, np.pi)
            x1, y1 = x0 + 0.12 * np.cos(angle), y0 + 0.12 * np.sin(angle)
            img = _fill(img, _segment(u, v, x0, y0, x1, y1, 0.035) * lung, 0.55, 0.5 + 0.1 * f.severity)
        fix.append((cx, cy, 0.8))
    return img


def _scarring(img, u, v, f: Finding, rng, lung, fix):
    for side in _sides(f):
        cx, cy = LUNG_X[side], (-0.42 if f.zone != "lower" else 0.12)
        for _ in range(2 + f.severity):
            x0, y0 = cx + rng.uniform(-0.15, 0.05), cy + rng.uniform(-0.05, 0.05)
            x1, y1 = x0 + rng.uniform(0.08, 0.18), y0 + rng.uniform(-0.1, 0.1)
            img = _fill(img, _segment(u, v, x0, y0, x1, y1, 0.008), 0.8, 0.9)
        fix.append((cx, cy, 0.7))
    return img


def _hyperinflation(img, u, v, f: Finding, rng, lung, fix):
    img = img - (0.05 + 0.03 * f.severity) * lung  # hyperlucent lungs
    for side, cx in LUNG_X.items():  # flattened domes: lung reaches below the drawn dome
        band = _ellipse(u, v, cx, 0.34, LUNG_RX * 0.95, 0.09 + 0.02 * f.severity, 0.02)
        img = _fill(img, band, 0.1, 0.9)
        fix.append((cx, 0.34, 0.5))
    return img


def _low_volumes(img, u, v, f: Finding, rng, lung, fix):
    for side, cx in LUNG_X.items():  # raised dense domes with crowded vessels above them
        dome = 0.18 - 0.06 * f.severity + 0.9 * (u - 0.9 * cx) ** 2
        region = _ellipse(u, v, cx, 0.1, LUNG_RX * 1.1, 0.35) * _sigmoid((v - dome) / 0.02)
        img = _fill(img, region, 0.62, 0.9)
        fix.append((cx, 0.18 - 0.06 * f.severity, 0.6))
    return img


def _spine(img, u, v, offset: np.ndarray) -> np.ndarray:
    """A bright spinal column whose centre line is u = offset(v); visible through the mediastinum."""
    column = _sigmoid((0.035 - np.abs(u - offset)) / 0.008) * _sigmoid((0.75 - np.abs(v + 0.05)) / 0.05)
    return _fill(img, column, 0.9, 0.55)


def _spine_curve(img, u, v, f: Finding, rng, lung, fix):
    direction = LATERAL[f.side if f.side in LATERAL else "right"]
    amplitude = (0.06, 0.1, 0.15)[f.severity]
    img = _spine(img, u, v, direction * amplitude * np.cos(np.pi * (v + 0.05) / 1.5))
    fix += [(direction * amplitude, -0.05, 0.8), (0.0, 0.45, 0.4)]
    return img


def _degenerative(img, u, v, f: Finding, rng, lung, fix):
    img = _spine(img, u, v, np.zeros_like(u))
    for y in np.arange(-0.6, 0.65, 0.16)[: 4 + 2 * f.severity]:  # spurs at the upper levels first
        for lat in (-1.0, 1.0):
            img = _fill(img, _segment(u, v, 0.03 * lat, y, 0.075 * lat, y + 0.02, 0.01), 0.97, 0.9)
    fix += [(0.0, -0.2, 0.8), (0.0, 0.2, 0.6)]
    return img


def _aorta(img, u, v, f: Finding, rng, lung, fix):
    cx, cy, r = 0.17 + 0.02 * f.severity, -0.34, 0.09 + 0.02 * f.severity
    img = _fill(img, _ellipse(u, v, cx, cy, r, r * 0.9, 0.015), 0.8, 0.9)  # widened knob
    rim = np.exp(-((np.hypot(u - cx, (v - cy) / 0.9) - r) ** 2) / (2 * 0.008**2)) * (v < cy)
    img = _fill(img, rim, 1.0, 0.8)  # calcified upper rim
    fix.append((cx, cy, 0.8))
    return img


def _device(img, u, v, f: Finding, rng, lung, fix):
    lat = LATERAL[f.side if f.side in LATERAL else "right"]
    x0, tip = 0.45 * lat + rng.uniform(-0.05, 0.05), (0.0 + rng.uniform(-0.03, 0.03), 0.02 + rng.uniform(-0.05, 0.05))
    points = [(x0, -0.95), (0.5 * (x0 + tip[0]), -0.55), (0.04 * lat, -0.3), tip]  # neck vein → SVC → atrium
    for (xa, ya), (xb, yb) in zip(points[:-1], points[1:]):
        img = _fill(img, _segment(u, v, xa, ya, xb, yb, 0.007), 1.0, 1.0)
    fix += [(tip[0], tip[1], 0.9), (points[1][0], points[1][1], 0.4)]
    return img


_DRAW = {
    "nodule": _nodule,
    "opacity": _opacity,
    "scarring": _scarring,
    "hyperinflation": _hyperinflation,
    "low_volumes": _low_volumes,
    "spine_curve": _spine_curve,
    "degenerative": _degenerative,
    "aorta": _aorta,
    "device": _device,
}


def draw_distractor(
    img: np.ndarray, u: np.ndarray, v: np.ndarray, f: Finding, rng: np.random.Generator, lung: np.ndarray,
    fixations: list[tuple[float, float, float]],
) -> np.ndarray:
    """Draw distractor `f` on `img` (S, S) float; appends its gaze fixations (u, v, weight).

    Args:
        img: the image being rendered, values ~[0, 1].
        u: (S, S) anatomical column coordinate; v: (S, S) row coordinate.
        f: a finding whose label is one of `findings.DISTRACTORS`.
        rng: the image's generator.
        lung: (S, S) soft lung mask.
        fixations: the image's fixation list, extended in place.
    """
    try:
        draw = _DRAW[f.label]
    except KeyError:
        raise ValueError(f"no distractor pattern for {f.label!r}; expected one of {sorted(_DRAW)}") from None
    return draw(img, u, v, f, rng, lung, fixations)
