"""Balanced single-label test sets: CheXpert / MIMIC 5x200 and CXR 14x100 (the one builder).

The eCLIP paper (Kumar et al. 2024, §4.1), after GLoRIA (Huang et al. 2021), draws 200 images
per CheXpert competition class (100 per NIH finding for 14x100), each positive for exactly that
one class. Eligibility is `medalign.data.labels.single_label_eligible`: exactly one class is 1,
no class is -1 (uncertain), the others are 0 or blank ("not mentioned" counts as not positive).
The view filter is the dataset adapter's (CheXpert keeps frontal images by default). On the
real CheXpert train.csv (frontal) this leaves 7,239 / 3,749 / 3,107 / 11,324 / 23,100 images.

MIMIC-CXR's official test split is small (about 5k images), so a class may have fewer than 200
eligible images (Consolidation is the likeliest). ``shortfall="take_all"`` (the ``mimic-5x200``
default) then takes every eligible image of that class, logs a warning, and records the eligible
and drawn counts in ``prepare_report.json`` (``subset``); ``"error"`` (the other subsets' default)
refuses, naming every count. The real MIMIC counts cannot be computed offline here (docs/datasets.md).

`single_label_subset` draws from a table (a raw dataset's, or a written manifest's frame);
``medalign prepare chexpert-5x200`` (`SubsetAdapter`) calls it.
The subset's class columns are one-hot and every row is in ``test``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from medalign.data.labels import single_label_eligible
from medalign.prepare.base import AdapterError, Prepared

log = logging.getLogger(__name__)
Shortfall = Literal["error", "take_all"]
COMPETITION_5 = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]


def eligible_rows(frame: pd.DataFrame, classes: Sequence[str]) -> dict[str, np.ndarray]:
    """Per class, the positions (0-based, in `frame` order) of rows eligible for it.

    Raises:
        AdapterError: a class column is missing.
    """
    missing = [c for c in classes if c not in frame.columns]
    if missing:
        raise AdapterError(f"single-label subset: column(s) {missing} missing; found {list(frame.columns)}")
    values = frame[list(classes)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float32)  # (N, C)
    eligible = single_label_eligible(values)
    return {c: np.flatnonzero(eligible & (values[:, k] == 1)) for k, c in enumerate(classes)}


def eligible_counts(frame: pd.DataFrame, classes: Sequence[str]) -> dict[str, int]:
    """Per class, how many rows of `frame` are eligible for it (the pool a subset draws from)."""
    return {c: len(rows) for c, rows in eligible_rows(frame, classes).items()}


def single_label_subset(
    frame: pd.DataFrame, classes: Sequence[str], per_class: int, seed: int, name: str = "subset",
    shortfall: Shortfall = "error",
) -> pd.DataFrame:
    """`per_class` eligible rows per class, drawn with `seed`; class columns become one-hot.

    Args:
        frame: rows to draw from, with the class columns (1 / 0 / -1 / blank).
        classes: the classes, e.g. `COMPETITION_5`.
        per_class: rows per class (200 for 5x200, 100 for 14x100).
        seed: sampling seed (same seed and table → same rows).
        name: subset name used in error messages.
        shortfall: a class with fewer eligible rows: ``error``, or ``take_all`` of them (with a warning).

    Returns:
        Rows grouped by class (in `classes` order), in table order within a class; split ``test``.

    Raises:
        AdapterError: with ``shortfall="error"``, a class has fewer than `per_class` eligible rows
            (the message gives every count).
    """
    pools = eligible_rows(frame, classes)
    counts = {c: len(rows) for c, rows in pools.items()}
    short = {c: n for c, n in counts.items() if n < per_class}
    if short and shortfall == "error":
        raise AdapterError(
            f"{name}: fewer than {per_class} single-label images for {short} (eligible per class: {counts}); "
            "lower the number per class, add data, or pass --shortfall take_all"
        )
    if short:
        log.warning("%s: fewer than %d single-label images for %s: taking all of them (eligible per class: %s)",
                    name, per_class, short, counts)
    rng = np.random.default_rng(seed)
    sizes = [min(per_class, counts[c]) for c in classes]
    picked = [np.sort(rng.choice(pools[c], size=n, replace=False)) for c, n in zip(classes, sizes)]
    out = frame.iloc[np.concatenate(picked)].copy()
    one_hot = np.repeat(np.eye(len(classes)), sizes, axis=0)  # (Σ sizes, C)
    for k, c in enumerate(classes):
        out[c] = one_hot[:, k]
    out["split"] = "test"
    return out.reset_index(drop=True)


class SubsetAdapter:
    """An adapter that runs a base adapter, then draws a single-label subset from one split."""

    def __init__(self, name: str, base, classes: Sequence[str], per_class: int, from_split: str,
                 shortfall: Shortfall = "error") -> None:
        self.NAME, self.base, self.classes = name, base, list(classes)
        self.per_class, self.from_split, self.shortfall = per_class, from_split, shortfall
        self.__doc__ = f"{name}: {per_class} single-label images per class of {self.classes} from `{base.NAME}`."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        self.base.add_arguments(parser)
        parser.add_argument("--per-class", type=int, default=self.per_class, help="images per class")
        parser.add_argument("--from-split", choices=["train", "val", "test", "all"], default=self.from_split,
                            help="split to draw from")  # fmt: skip
        parser.add_argument("--shortfall", choices=["error", "take_all"], default=self.shortfall,
                            help="a class with fewer eligible images than --per-class: fail, or take all of them")

    def build(self, root: Path, args: argparse.Namespace) -> Prepared:
        full = self.base.build(root, args)
        frame = full.frame if args.from_split == "all" else full.frame[full.frame["split"] == args.from_split]
        shortfall = getattr(args, "shortfall", self.shortfall)
        subset = single_label_subset(frame, self.classes, args.per_class, args.seed, self.NAME, shortfall)
        keep = [c for c in subset.columns if c not in full.label_columns or c in self.classes]
        counts = eligible_counts(frame, self.classes)
        drawn = {c: min(args.per_class, n) for c, n in counts.items()}
        notes = [
            *full.notes,
            f"{len(self.classes)}x{args.per_class} drawn from {len(frame)} {args.from_split} rows (eligible per class: {counts})",
        ]
        short = {c: n for c, n in drawn.items() if n < args.per_class}
        if short:
            notes.append(f"SHORTFALL: fewer than {args.per_class} eligible images for {short}: all of them taken")
        report = {**full.report, "subset": {"per_class": args.per_class, "from_split": args.from_split, "eligible": counts,
                                            "drawn": drawn, "short": short}}  # fmt: skip
        return Prepared(self.NAME, subset[keep], self.classes, full.rows_in, full.dropped, notes, report)
