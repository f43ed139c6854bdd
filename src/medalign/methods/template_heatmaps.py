"""Template gaze: heatmaps built from the report alone — the control that asks whether gaze adds
anything the report does not already say.

Each gaze row's heatmap is replaced by the mean heatmap of the *other* training gaze rows whose
report states the same findings at the same locations (the key: positive labels, side and zone
words of the report). The control therefore has exactly eCLIP's extra pairs (same rows, same
count) and heatmaps with the typical shape of "a right lower-lobe consolidation", but no
information from the row's own gaze. A key without another row falls back to its findings alone,
then to the mean of all other gaze rows (the fallback level is recorded per row).

Used by the eCLIP positive-control study (``configs/benchmark/eclip_positive_control.yaml``):
``python scripts/template_gaze.py <manifest.csv>`` writes ``<stem>_template_gaze.csv`` next to it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

SIDES = ("right", "left", "bilateral")
ZONES = ("upper", "middle", "lower", "apex", "base", "hilum", "retrocardiac", "lingula")
SYNONYMS = {"bases": "base", "basal": "base", "basilar": "base", "apices": "apex", "apical": "apex", "hilar": "hilum"}


def report_key(text: str, positives: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(positive findings, side words, zone words) a report states; words in negated sentences are ignored.

    Args:
        text: the report.
        positives: names of the row's positive label columns.
    """
    stated = [s for s in re.split(r"[.;\n]", text.lower()) if s.strip() and not re.search(r"\bno\b|\bwithout\b|\bnot\b", s)]
    words = {SYNONYMS.get(w, w) for w in re.findall(r"[a-z]+", " ".join(stated))}
    return tuple(sorted(positives)), tuple(w for w in SIDES if w in words), tuple(w for w in ZONES if w in words)


def template_heatmaps(heatmaps: Sequence[np.ndarray], keys: Sequence[tuple]) -> tuple[list[np.ndarray], list[str]]:
    """Leave-one-out keyed means: row i gets the mean heatmap of the other rows with its key.

    Args:
        heatmaps: N (H, W) gaze heatmaps (the training gaze rows).
        keys: N `report_key` results.

    Returns:
        (N template heatmaps (H, W), each scaled to peak 1 like the originals; the level used per
        row: ``key`` (same findings and locations), ``findings`` (same findings), ``all``).

    Raises:
        ValueError: fewer than 2 rows, differing shapes, or len(keys) != len(heatmaps).
    """
    if len(heatmaps) < 2 or len(keys) != len(heatmaps):
        raise ValueError(f"template_heatmaps needs ≥ 2 heatmaps and one key each, got {len(heatmaps)} and {len(keys)}")
    stack = np.stack([np.asarray(h, dtype=np.float64) for h in heatmaps])  # (N, H, W); raises on differing shapes
    levels = {"key": [tuple(k) for k in keys], "findings": [tuple(k)[0] for k in keys], "all": [() for _ in keys]}
    out, used = [], []
    for i in range(len(stack)):
        for level, group in levels.items():
            others = [j for j, g in enumerate(group) if g == group[i] and j != i]
            if others:
                mean = stack[others].mean(0)  # (H, W)
                peak = mean.max()
                out.append((mean / peak if peak > 0 else mean).astype(np.float32))
                used.append(level)
                break
    return out, used


def write_template_manifest(manifest: str | Path, label_columns: Sequence[str], split: str = "train") -> Path:
    """Write ``<stem>_template_gaze.csv`` beside `manifest`: `split` rows' heatmaps replaced by templates.

    The other splits keep their heatmaps (the test gaze rows still score saliency against real
    gaze). Template files go to ``heatmaps_template/``; the manifest gains a ``template_level`` column.

    Returns:
        The new manifest's path.
    """
    import pandas as pd

    manifest = Path(manifest)
    frame = pd.read_csv(manifest, keep_default_na=False)
    missing = [c for c in ("text", "split", "heatmap", *label_columns) if c not in frame]
    if missing:
        raise ValueError(f"{manifest}: template gaze needs the columns {missing}")
    rows = frame.index[(frame["split"] == split) & (frame["heatmap"] != "")]
    keys = [report_key(frame.at[i, "text"], [c for c in label_columns if str(frame.at[i, c]) == "1"]) for i in rows]
    maps, used = template_heatmaps([np.load(manifest.parent / frame.at[i, "heatmap"]) for i in rows], keys)
    (manifest.parent / "heatmaps_template").mkdir(exist_ok=True)
    frame["template_level"] = ""
    for i, heat, level in zip(rows, maps, used):
        rel = f"heatmaps_template/{Path(frame.at[i, 'heatmap']).name}"
        np.save(manifest.parent / rel, heat)
        frame.at[i, "heatmap"], frame.at[i, "template_level"] = rel, level
    out = manifest.with_name(f"{manifest.stem}_template_gaze.csv")
    frame.to_csv(out, index=False)
    return out
