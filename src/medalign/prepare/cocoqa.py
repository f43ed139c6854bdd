"""COCO-QA question answering on MS-COCO images (Ren et al. 2015, cocoqa-2015-05-17.zip).

Published layout::

    train/ and test/, each with four line-aligned files:
        img_ids.txt    the COCO image id (integer)
        questions.txt  the question
        answers.txt    its one-word answer
        types.txt      0 object, 1 number, 2 color, 3 location
    COCO 2014 images: train2014/COCO_train2014_<id:012d>.jpg (train), val2014/COCO_val2014_<id:012d>.jpg (test)
    (also found: images/, train2017/ or val2017/ holding <id:012d>.jpg)

As in the cone-effect paper (Restrepo et al. 2026), the text is the question and the task is
multi-class over the answers (one column per answer seen in train; a test row whose answer never
occurs in train is dropped). The official train/test split is kept; ``--val-fraction`` moves a
seeded share of train images to val.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from medalign.prepare.base import AdapterError, Drops, Prepared, drop, split_by_group
from medalign.prepare.classes import class_columns, one_hot
from medalign.prepare.options import adapter, arguments_adder

NAME = "coco-qa"
VERSION = "COCO-QA 2015-05-17 (train/ and test/: img_ids.txt, questions.txt, answers.txt, types.txt) + COCO 2014 images"
FIELDS = ("img_ids", "questions", "answers", "types")
TYPES = {0: "object", 1: "number", 2: "color", 3: "location"}
COCO = {"train": ("train2014", "COCO_train2014_"), "test": ("val2014", "COCO_val2014_")}
OTHER_FOLDERS = ("images", "train2017", "val2017")


def read_split(root: Path, split: str) -> pd.DataFrame:
    """The four line-aligned files of one split as columns (image_id, question, answer, type, _file, _row)."""
    columns = {}
    for field in FIELDS:
        path = root / split / f"{field}.txt"
        if not path.is_file():
            raise AdapterError(f"{NAME}: {path} does not exist; expected the {VERSION} layout")
        columns[field] = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    lengths = {f: len(v) for f, v in columns.items()}
    if len(set(lengths.values())) != 1:
        raise AdapterError(f"{NAME}: {root / split} files differ in length {lengths}; they must align line by line")
    return pd.DataFrame({"image_id": [int(i) for i in columns["img_ids"]], "question": columns["questions"],
                         "answer": columns["answers"], "type": [TYPES.get(int(t), t) for t in columns["types"]],
                         "_file": str(root / split / "questions.txt"), "_row": np.arange(1, lengths["img_ids"] + 1)})


def _image_index(root: Path) -> dict[int, Path]:
    """COCO image id → file, over every image folder present."""
    found: dict[int, Path] = {}
    for folder in (*(f for f, _ in COCO.values()), *OTHER_FOLDERS):
        for path in (root / folder).glob("*.jpg") if (root / folder).is_dir() else ():
            digits = path.stem.rsplit("_", 1)[-1]
            if digits.isdigit():
                found.setdefault(int(digits), path)
    return found


@adapter
def build(root: Path, *, val_fraction: float = 0.0, seed: int = 0) -> Prepared:
    """Read both splits; one row per question.

    Args:
        root: the COCO-QA folder with train/, test/ and the COCO image folders.
        val_fraction: share of train images moved to val (seeded, by image).
        seed: seed of that split.
    """
    table = pd.concat([read_split(root, s).assign(split=s) for s in COCO], ignore_index=True)
    rows_in = len(table)
    images = _image_index(root)
    folder = {s: COCO[s] for s in COCO}
    table["image"] = [str(images.get(i, root / folder[s][0] / f"{folder[s][1]}{i:012d}.jpg"))
                      for i, s in zip(table["image_id"], table["split"])]  # fmt: skip
    train = table["split"] == "train"
    if val_fraction > 0:
        moved = split_by_group(table.loc[train, "image_id"], val_fraction, 0.0, seed)
        table.loc[train, "split"] = np.where(moved == "val", "val", "train")
    classes = class_columns([[a] for a in table.loc[table["split"] == "train", "answer"]])
    dropped = Drops()
    table = drop(table, ~table["answer"].isin(classes), "answer never seen in train", dropped, value="answer")
    labels = one_hot([[a] for a in table["answer"]], classes)
    ids = [f"{f.rsplit('/', 2)[-2]}-{r}" for f, r in zip(table["_file"], table["_row"])]
    frame = pd.DataFrame({
        "image": table["image"].to_numpy(), "text": table["question"].to_numpy(), "split": table["split"].to_numpy(),
        "id": ids, "study_id": table["image_id"].astype(str).to_numpy(), "subject_id": table["image_id"].astype(str).to_numpy(),
        "question_type": table["type"].to_numpy(), **labels, "_file": table["_file"].to_numpy(), "_row": table["_row"].to_numpy(),
    })  # fmt: skip
    return Prepared(NAME, frame, list(labels), rows_in, dropped)


add_arguments = arguments_adder(build)
