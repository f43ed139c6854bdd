"""DAQUAR indoor-scene question answering (Malinowski & Fritz 2014; NYU-Depth V2 images).

Published layout (datasets.d2.mpi-inf.mpg.de/mateusz14visual-turing/)::

    qa.894.raw.train.txt, qa.894.raw.test.txt   alternating lines: a question ending "in the image<N> ?",
                                                then its answer(s), comma-separated ("chair, table")
    nyu_depth_images/image<N>.png                (the folder may be renamed images/)

As in the cone-effect paper (Restrepo et al. 2026), the text is the question (without its
"in the image<N>" suffix) and the task is multi-label over the answer words (one column per
answer seen ``min_count`` times in train; rows whose answers are all unseen keep no positive).
DAQUAR has a train/test split; ``--val-fraction`` moves a seeded share of train *images* to val.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from medalign.prepare.base import AdapterError, Drops, Prepared, split_by_group
from medalign.prepare.classes import class_columns, one_hot
from medalign.prepare.options import adapter, arguments_adder

NAME = "daquar"
VERSION = "DAQUAR (qa.894.raw.train.txt / qa.894.raw.test.txt, nyu_depth_images/image<N>.png)"
FILES = {"train": "qa.894.raw.train.txt", "test": "qa.894.raw.test.txt"}
_IMAGE = re.compile(r"\s*in the (image\d+)\s*\??\s*$")


def parse_qa(path: Path) -> pd.DataFrame:
    """question, image (``image<N>``), answers (list), _file, _row of one DAQUAR QA file."""
    if not path.is_file():
        raise AdapterError(f"{NAME}: {path} does not exist; expected the {VERSION} layout")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(lines) % 2:
        raise AdapterError(f"{NAME}: {path} has an odd number of non-empty lines; questions and answers alternate")
    rows = []
    for k in range(0, len(lines), 2):
        match = _IMAGE.search(lines[k])
        if match is None:
            raise AdapterError(f"{NAME}: {path} line {k + 1}: question {lines[k]!r} does not end with 'in the image<N> ?'")
        rows.append({"question": lines[k][: match.start()].strip() + "?", "image": match[1],
                     "answers": [a.strip() for a in lines[k + 1].split(",") if a.strip()],
                     "_file": str(path), "_row": k + 1})  # fmt: skip
    return pd.DataFrame(rows)


@adapter
def build(root: Path, *, min_count: int = 1, val_fraction: float = 0.0, seed: int = 0) -> Prepared:
    """Read both QA files; one row per question.

    Args:
        root: the DAQUAR folder.
        min_count: keep an answer as a label column when it answers at least this many train questions.
        val_fraction: share of train images moved to val (seeded, by image).
        seed: seed of that split.
    """
    table = pd.concat([parse_qa(root / f).assign(split=s) for s, f in FILES.items()], ignore_index=True)
    train = table["split"] == "train"
    if val_fraction > 0:
        moved = split_by_group(table.loc[train, "image"], val_fraction, 0.0, seed)
        table.loc[train, "split"] = np.where(moved == "val", "val", "train")
    classes = class_columns(table.loc[table["split"] == "train", "answers"], min_count)
    labels = one_hot(table["answers"], classes)
    folder = root / "nyu_depth_images" if (root / "nyu_depth_images").is_dir() else root / "images"
    ids = [f"{s}-{r}" for s, r in zip(table["split"], table["_row"])]
    frame = pd.DataFrame({
        "image": [str(folder / f"{i}.png") for i in table["image"]], "text": table["question"].to_numpy(),
        "split": table["split"].to_numpy(), "id": ids, "study_id": table["image"].to_numpy(),
        "subject_id": table["image"].to_numpy(), **labels, "_file": table["_file"].to_numpy(),
        "_row": table["_row"].to_numpy(),
    })  # fmt: skip
    return Prepared(NAME, frame, list(labels), len(table), Drops())


add_arguments = arguments_adder(build)
