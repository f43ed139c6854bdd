"""A 5x200 / 14x100 test manifest from an already written manifest (GLoRIA, Huang et al. 2021).

A thin caller of the one builder, `medalign.prepare.subsets.single_label_subset` (the rule:
exactly one of `classes` positive, none uncertain, blanks not positive). From a raw dataset,
``medalign prepare chexpert-5x200 | mimic-5x200 | nih-14x100`` does the same in one step.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from medalign.data.manifest import Manifest, read_manifest
from medalign.prepare.subsets import single_label_subset


def balanced_single_label(
    manifest: str | Path | Manifest,
    classes: Sequence[str],
    per_class: int,
    seed: int = 0,
    out: str | Path | None = None,
    split: str | None = "test",
) -> Manifest:
    """Draw `per_class` rows positive for exactly one of `classes` (none uncertain; blank = not positive).

    Args:
        manifest: a manifest path or `Manifest`.
        classes: the label columns, e.g. the five CheXpert competition classes.
        per_class: rows drawn per class (200 for 5x200, 100 for 14x100).
        seed: sampling seed (same seed → same rows).
        out: write the new manifest here (CSV); image / heatmap paths are rewritten relative
            to its folder. None → not written.
        split: draw from this split only (None: every split); the output's split is ``test``.

    Returns:
        The balanced manifest: class columns one-hot, rows grouped by class.

    Raises:
        ValueError: a class has fewer than `per_class` eligible rows (the message gives every count).
    """
    if not isinstance(manifest, Manifest):
        manifest = read_manifest(manifest, list(classes), check_files=False, allow_outside_paths=True)  # an oracle: no path rule
    source = manifest.split(split) if split else manifest
    where = f"{manifest.path}{f' split {split!r}' if split else ''}"
    frame = single_label_subset(source.frame, classes, per_class, seed, name=where)
    if out is None:
        return Manifest(manifest.path, frame, list(classes))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for column in ("image", "heatmap"):
        if column in frame:
            paths = frame[column]
            frame[column] = [os.path.relpath(manifest.root / p, out.parent) if isinstance(p, str) and p else p for p in paths]
    frame.to_csv(out, index=False)
    return read_manifest(out, list(classes), check_files=False, allow_outside_paths=True)  # relative to `out`, checked source
