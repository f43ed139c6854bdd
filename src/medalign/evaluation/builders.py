"""Balanced single-label test sets in the style of CheXpert 5x200 / CXR 14x100 (GLoRIA, Huang et al. 2021)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from medalign.data.manifest import Manifest, UncertainPolicy, read_manifest
from medalign.evaluation.tasks.zero_shot import single_label_rows


def balanced_single_label(
    manifest: str | Path | Manifest,
    classes: Sequence[str],
    per_class: int,
    seed: int = 0,
    out: str | Path | None = None,
    split: str | None = "test",
    uncertain: UncertainPolicy = "ignore",
) -> Manifest:
    """Draw `per_class` rows positive for exactly one of `classes` (and known for all of them).

    Args:
        manifest: a manifest path or `Manifest`.
        classes: the label columns, e.g. the five CheXpert competition classes.
        per_class: rows drawn per class (200 for 5x200, 100 for 14x100).
        seed: sampling seed (same seed → same rows).
        out: write the new manifest here (CSV); image / heatmap paths are rewritten relative
            to its folder. None → not written.
        split: draw from this split only (None: every split); the output's split is ``test``.
        uncertain: policy for -1 labels; ``ignore`` (default) leaves uncertain rows out.

    Returns:
        The balanced manifest, rows ordered by class then draw.

    Raises:
        ValueError: a class has fewer than `per_class` eligible rows (the message gives every count).
    """
    if not isinstance(manifest, Manifest):
        manifest = read_manifest(manifest, list(classes), check_files=False)
    source = manifest.split(split) if split else manifest
    source = Manifest(source.path, source.frame, list(classes))
    labels = source.labels(uncertain)
    eligible = single_label_rows(labels)
    owner = np.nan_to_num(labels).argmax(1)
    pools = {c: np.flatnonzero(eligible & (owner == k)) for k, c in enumerate(classes)}
    short = {c: len(p) for c, p in pools.items() if len(p) < per_class}
    if short:
        counts = {c: len(p) for c, p in pools.items()}
        raise ValueError(
            f"{manifest.path}{f' split {split!r}' if split else ''}: need {per_class} single-label rows per class, "
            f"found {counts}; lower per_class or add data"
        )
    rng = np.random.default_rng(seed)
    picks = np.concatenate([rng.choice(pools[c], size=per_class, replace=False) for c in classes])
    frame = source.frame.iloc[picks].copy()
    frame["split"] = "test"
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        for column in ("image", "heatmap"):
            if column in frame:
                frame[column] = [
                    os.path.relpath(manifest.root / p, out.parent) if isinstance(p, str) and p else p for p in frame[column]
                ]
        frame.to_csv(out, index=False)
        return read_manifest(out, list(classes), check_files=False)
    return Manifest(manifest.path, frame, list(classes))
