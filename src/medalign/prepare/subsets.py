"""Zero-shot evaluation subsets: N single-label images per class (CheXpert/MIMIC 5x200, CXR 14x100).

Each kept image is positive (1) for exactly one of the classes and not positive or uncertain
for any other; ``per_class`` images per class are drawn with a seeded generator. The subset
keeps only the class columns (one-hot) and puts every row in ``test``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from medalign.prepare.base import AdapterError, Prepared

COMPETITION_5 = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]


def single_label_subset(
    frame: pd.DataFrame, classes: Sequence[str], per_class: int, seed: int, name: str = "subset"
) -> pd.DataFrame:
    """`per_class` rows per class, each positive for that class only; labels become one-hot.

    Raises:
        AdapterError: a class has fewer than `per_class` eligible rows (the message gives the counts).
    """
    values = frame[list(classes)].apply(pd.to_numeric, errors="coerce").to_numpy()  # (N, C)
    positive, uncertain = values == 1, values == -1
    eligible = (positive.sum(1) == 1) & ~uncertain.any(1)
    rng = np.random.default_rng(seed)
    picked = []
    counts = {c: int((eligible & positive[:, k]).sum()) for k, c in enumerate(classes)}
    short = {c: n for c, n in counts.items() if n < per_class}
    if short:
        raise AdapterError(f"{name}: fewer than {per_class} single-label images for {short} (eligible per class: {counts})")
    for k, _ in enumerate(classes):
        rows = np.flatnonzero(eligible & positive[:, k])
        picked.append(np.sort(rng.choice(rows, size=per_class, replace=False)))
    out = frame.iloc[np.concatenate(picked)].copy()
    one_hot = positive[np.concatenate(picked)].astype(float)
    for k, c in enumerate(classes):
        out[c] = one_hot[:, k]
    out["split"] = "test"
    return out.reset_index(drop=True)


class SubsetAdapter:
    """An adapter that runs a base adapter, then draws a single-label subset from one split."""

    def __init__(self, name: str, base, classes: Sequence[str], per_class: int, from_split: str) -> None:
        self.NAME, self.base, self.classes = name, base, list(classes)
        self.per_class, self.from_split = per_class, from_split
        self.__doc__ = f"{name}: {per_class} single-label images per class of {self.classes} from `{base.NAME}`."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        self.base.add_arguments(parser)
        parser.add_argument("--per-class", type=int, default=self.per_class, help="images per class")
        parser.add_argument("--from-split", choices=["train", "val", "test", "all"], default=self.from_split,
                            help="split to draw from")  # fmt: skip

    def build(self, root: Path, args: argparse.Namespace) -> Prepared:
        full = self.base.build(root, args)
        frame = full.frame if args.from_split == "all" else full.frame[full.frame["split"] == args.from_split]
        subset = single_label_subset(frame, self.classes, args.per_class, args.seed, self.NAME)
        keep = [c for c in subset.columns if c not in full.label_columns or c in self.classes]
        notes = [*full.notes, f"{len(self.classes)}x{args.per_class} drawn from {len(frame)} {args.from_split} rows"]
        return Prepared(self.NAME, subset[keep], self.classes, full.rows_in, full.dropped, notes)


