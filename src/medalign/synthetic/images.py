"""Render chest-X-ray-like grayscale images with localised findings, plus gaze heatmaps.

Everything is drawn on a normalised anatomical grid (u, v) in [-1, 1]^2 (v points down,
the patient's right lung is at u < 0), after a small random per-image shift and scale, so
the same code works at any image size. Shapes are soft (sigmoid edges) so they survive
downsampling. All randomness comes from the generator passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medalign.data.heatmaps import peak_normalise
from medalign.synthetic.findings import DISTRACTORS, Finding

LUNG_X = {"right": -0.40, "left": 0.40}  # lung centre along u (patient's right = image left)
LATERAL = {"right": -1.0, "left": 1.0}  # direction of the chest wall from a lung's centre
LUNG_Y, LUNG_RX, LUNG_RY = -0.05, 0.30, 0.58  # lung ellipse centre row and radii
HEART_X, HEART_Y, HEART_RX, HEART_RY = 0.08, 0.14, 0.25, 0.21
HEART_WIDTH = (1.35, 1.55, 1.75)  # cardiomegaly heart-width factor per severity
GAZE_SIGMA = 0.1  # fixation Gaussian sigma in grid units (= 1/20 of the image side)


@dataclass
class Rendered:
    image: np.ndarray  # (S, S) uint8
    fixations: list[tuple[float, float, float]] = field(default_factory=list)  # (u, v, weight)
    shift: tuple[float, float] = (0.0, 0.0)  # (dx, dy) applied to the anatomy, grid units
    scale: float = 1.0  # anatomy scale factor


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _ellipse(u, v, cx, cy, rx, ry, edge=0.04) -> np.ndarray:
    """Soft indicator of an ellipse, 1 inside, 0 outside, edge width ~`edge` grid units."""
    r = np.sqrt(((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2)
    return _sigmoid((1.0 - r) * min(rx, ry) / edge)


def _segment(u, v, x0, y0, x1, y1, sigma) -> np.ndarray:
    """Gaussian profile of thickness `sigma` around the segment (x0, y0)-(x1, y1)."""
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((u - x0) * dx + (v - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    d2 = (u - x0 - t * dx) ** 2 + (v - y0 - t * dy) ** 2
    return np.exp(-d2 / (2 * sigma**2))


def _fill(img: np.ndarray, mask: np.ndarray, value: float, alpha: float = 1.0) -> np.ndarray:
    """Blend `img` toward `value` where `mask` (in [0, 1]) is set: an opacity of density `value`."""
    return img + (value - img) * np.clip(alpha * mask, 0.0, 1.0)


def _lungs(u, v, findings: list[Finding]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Lung masks per side, clipped by the diaphragm dome; atelectasis shrinks its side."""
    masks = {}
    for side, cx in LUNG_X.items():
        loss = sum(
            f.severity + 1 for f in findings if f.label == "Atelectasis" and f.side in (side, "bilateral")
        )
        rx = LUNG_RX * (1.0 - 0.05 * loss)
        dome0 = (0.28 if side == "right" else 0.32) - 0.05 * loss  # volume loss raises the dome
        dome = dome0 + 0.9 * (u - 0.9 * cx) ** 2
        masks[side] = _ellipse(u, v, cx, LUNG_Y, rx, LUNG_RY) * _sigmoid((dome - v) / 0.02)
    return masks["right"] + masks["left"], masks


def _effusion(img, u, v, f: Finding, fix) -> np.ndarray:
    level0 = (0.17, -0.02, -0.22)[f.severity]  # upper border of the fluid at the lung's centre
    for side in ("right", "left") if f.side == "bilateral" else (f.side,):
        cx, lat = LUNG_X[side], LATERAL[side]
        t = np.clip((u - cx) * lat / LUNG_RX, 0.0, 1.2)
        level = level0 - 0.2 * t**2  # meniscus: fluid climbs the lateral chest wall
        region = _ellipse(u, v, cx, LUNG_Y + 0.08, LUNG_RX * 1.05, LUNG_RY + 0.06)
        img = _fill(img, region * _sigmoid((v - level) / 0.025), 0.56, 0.95)
        fix += [(cx + 0.12 * lat, 0.40, 1.0), (cx, max(level0, 0.0) + 0.15, 0.6)]
    return img


def _consolidation(img, u, v, f: Finding, rng, lung, fix) -> np.ndarray:
    cx = LUNG_X[f.side] + rng.uniform(-0.06, 0.06)
    cy = (-0.28 if f.zone == "upper" else 0.10) + rng.uniform(-0.05, 0.05)
    r0 = (0.11, 0.15, 0.19)[f.severity]
    theta = np.arctan2(v - cy, u - cx)
    phase = rng.uniform(0, 2 * np.pi, size=2)
    r = r0 * (1 + 0.15 * np.sin(3 * theta + phase[0]) + 0.08 * np.sin(5 * theta + phase[1]))
    blob = _sigmoid((r - np.hypot(u - cx, v - cy)) / 0.012) * np.clip(1.5 * lung, 0, 1)
    img = _fill(img, blob, 0.74, 0.95)
    if f.air_bronchograms:  # darker branching tubes inside the opacity
        for angle in rng.uniform(0, 2 * np.pi, size=3):
            x1, y1 = cx + 0.8 * r0 * np.cos(angle), cy + 0.8 * r0 * np.sin(angle)
            img = img - 0.18 * blob * _segment(u, v, cx, cy, x1, y1, 0.014)
    fix += [(cx, cy, 1.0), (cx + rng.uniform(-r0, r0), cy + rng.uniform(-r0, r0), 0.5)]
    return img


def _atelectasis(img, u, v, f: Finding, rng, fix) -> np.ndarray:
    for side in ("right", "left") if f.side == "bilateral" else (f.side,):
        for _ in range(1 + f.severity):
            cx = LUNG_X[side] + rng.uniform(-0.07, 0.07)
            cy = rng.uniform(0.02, 0.20)
            half, slope = 0.13 + 0.04 * f.severity, rng.uniform(-0.15, 0.15)
            band = _segment(u, v, cx - half, cy - slope * half, cx + half, cy + slope * half, 0.022)
            img = _fill(img, band, 0.76, 0.9)
            fix.append((cx, cy, 0.8))
    return img


def _edema(img, u, v, f: Finding, rng, lung, fix) -> np.ndarray:
    alpha = (0.65, 0.8, 0.95)[f.severity]
    haze = sum(np.exp(-((u - hx) ** 2) / (2 * 0.24**2) - (v + 0.02) ** 2 / (2 * 0.3**2)) for hx in (-0.24, 0.24))
    img = _fill(img, haze * np.clip(1.3 * lung, 0, 1), 0.6, alpha)  # bat-wing perihilar haze
    for side, lat in LATERAL.items():  # Kerley B lines: short horizontal lines at the periphery
        x_wall = LUNG_X[side] + lat * (LUNG_RX - 0.07)
        for y in rng.uniform(0.0, 0.25, size=2 + f.severity):
            img = _fill(img, _segment(u, v, x_wall - 0.05, y, x_wall + 0.05, y, 0.012), 0.7, 0.8)
        fix += [(0.22 * lat, 0.0, 1.0), (x_wall, 0.12, 0.5)]
    return img


def render_image(findings: list[Finding], size: int, rng: np.random.Generator) -> Rendered:
    """Draw one chest X-ray with `findings`; returns the uint8 image and gaze fixations."""
    scale = rng.uniform(0.92, 1.06)
    shift = (rng.uniform(-0.06, 0.06), rng.uniform(-0.06, 0.06))
    axis = (np.arange(size) + 0.5) / size * 2 - 1
    x, y = np.meshgrid(axis, axis)  # (S, S), rows run top to bottom
    u, v = (x - shift[0]) / scale, (y - shift[1]) / scale

    body = _ellipse(u, v, 0.0, 0.12, 0.95, 1.15, edge=0.05)
    img = 0.08 + 0.42 * body  # soft tissue and abdomen
    lung, _ = _lungs(u, v, findings)
    ribs = np.clip(np.cos(2 * np.pi * (v + 0.25 * u**2) / 0.16), 0, 1) ** 3
    img = img - 0.30 * lung + 0.06 * ribs * lung
    mediastinum = _sigmoid((0.12 - np.abs(u)) / 0.02) * _sigmoid((0.2 - v) / 0.04) * body
    img = _fill(img, mediastinum, 0.58, 0.85)
    width = next((HEART_WIDTH[f.severity] for f in findings if f.label == "Cardiomegaly"), rng.uniform(0.95, 1.05))
    img = _fill(img, _ellipse(u, v, HEART_X, HEART_Y, HEART_RX * width, HEART_RY, 0.02), 0.68, 0.95)

    fixations: list[tuple[float, float, float]] = []
    for f in findings:
        if f.label == "Cardiomegaly":
            fixations += [(HEART_X, HEART_Y, 1.0)]
            fixations += [(HEART_X + s * HEART_RX * width, HEART_Y + 0.03, 0.7) for s in (-1, 1)]
        elif f.label == "Pleural Effusion":
            img = _effusion(img, u, v, f, fixations)
        elif f.label == "Consolidation":
            img = _consolidation(img, u, v, f, rng, lung, fixations)
        elif f.label == "Atelectasis":
            img = _atelectasis(img, u, v, f, rng, fixations)
        elif f.label == "Edema":
            img = _edema(img, u, v, f, rng, lung, fixations)
        elif f.label in DISTRACTORS:  # the rendered Open-I set's non-CheXpert findings
            from medalign.synthetic.distractors import draw_distractor

            img = draw_distractor(img, u, v, f, rng, lung, fixations)
    if not findings:  # a normal read scans both lungs and the heart evenly
        fixations += [(cx, cy, 0.6) for cx in LUNG_X.values() for cy in (-0.35, 0.12)]
        fixations.append((HEART_X, HEART_Y, 0.6))
    fixations += [(rng.uniform(-0.6, 0.6), rng.uniform(-0.5, 0.3), 0.3) for _ in range(2)]  # stray glances

    contrast, brightness = rng.uniform(0.85, 1.15), rng.uniform(-0.05, 0.05)
    img = (img - 0.4) * contrast + 0.4 + brightness + rng.normal(0.0, 0.025, img.shape)
    image = np.round(np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)
    return Rendered(image=image, fixations=fixations, shift=shift, scale=scale)


def render_heatmap(rendered: Rendered, sigma: float = GAZE_SIGMA) -> np.ndarray:
    """Gaze heatmap: fixation-weighted sum of Gaussians, normalised to max 1, float32 (S, S)."""
    size = rendered.image.shape[0]
    axis = (np.arange(size) + 0.5) / size * 2 - 1
    fx = np.array([f[0] for f in rendered.fixations]) * rendered.scale + rendered.shift[0]
    fy = np.array([f[1] for f in rendered.fixations]) * rendered.scale + rendered.shift[1]
    w = np.array([f[2] for f in rendered.fixations])
    s = sigma * rendered.scale
    gx = np.exp(-((axis[None, :] - fx[:, None]) ** 2) / (2 * s * s))  # (F, S) over columns
    gy = np.exp(-((axis[None, :] - fy[:, None]) ** 2) / (2 * s * s))  # (F, S) over rows
    heat = np.einsum("f,fr,fc->rc", w, gy, gx)  # (S, S)
    return peak_normalise(heat)
