"""Recipes5k food photos with their ingredient lists (Marín et al. 2017, http://www.ub.edu/cvub/recipes5k/).

Published layout::

    annotations/{train,val,test}_images.txt   one image path per line, ``<food type>/<file>.jpg``
    annotations/{train,val,test}_labels.txt   one 0-based line index into the ingredients file per line
    annotations/ingredients_Recipes5k.txt      one comma-separated ingredient list per line (3,213 ingredients)
    annotations/ingredients_simplified_Recipes5k.txt   the same lines over 1,013 simplified ingredients
    annotations/classes_Recipes5k.txt          the 101 Food-101 food types
    images/<food type>/<file>.jpg

As in the cone-effect paper (Restrepo et al. 2026), the text is the ingredient list and the task is
the multi-class food type (101 classes, the image's folder), one-hot in the manifest. The official
train/val/test split is kept.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medalign.prepare.base import AdapterError, Drops, Prepared, drop
from medalign.prepare.classes import class_columns, one_hot
from medalign.prepare.options import adapter, arguments_adder

NAME = "recipes5k"
VERSION = "Recipes5k (annotations/{split}_images.txt + {split}_labels.txt + ingredients_Recipes5k.txt, images/)"
SPLITS = {"train": "train", "val": "val", "test": "test"}


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise AdapterError(f"{NAME}: {path} does not exist; expected the {VERSION} layout")
    return [line.rstrip("\n\r") for line in path.read_text(encoding="utf-8").splitlines()]


@adapter
def build(root: Path, *, simplified: bool = False) -> Prepared:
    """Read the split lists and ingredient lines; one row per image.

    Args:
        root: the Recipes5k folder (annotations/ and images/).
        simplified: use ingredients_simplified_Recipes5k.txt (1,013 ingredients) for the text.
    """
    notes = root / "annotations"
    ingredients = _lines(notes / ("ingredients_simplified_Recipes5k.txt" if simplified else "ingredients_Recipes5k.txt"))
    rows = []
    for split, name in SPLITS.items():
        images, labels = _lines(notes / f"{name}_images.txt"), _lines(notes / f"{name}_labels.txt")
        if len(images) != len(labels):
            raise AdapterError(f"{NAME}: {notes / f'{name}_images.txt'} has {len(images)} lines but "
                               f"{name}_labels.txt has {len(labels)}; they must pair line by line")
        for i, (image, label) in enumerate(zip(images, labels)):
            rows.append({"image_rel": image.strip(), "index": int(label), "split": split,
                         "_file": str(notes / f"{name}_images.txt"), "_row": i + 1})
    table = pd.DataFrame(rows)
    dropped = Drops()
    table = drop(table, ~table["index"].between(0, len(ingredients) - 1), "ingredient index out of range", dropped,
                 value="index")
    table["food"] = table["image_rel"].str.split("/").str[0]
    text = [", ".join(t.strip() for t in ingredients[i].split(",") if t.strip()) for i in table["index"]]
    table = table.assign(text=text)
    table = drop(table, table["text"] == "", "empty ingredient list", dropped, value="image_rel")
    classes = class_columns([[f] for f in table.loc[table["split"] == "train", "food"]])
    labels = one_hot([[f] for f in table["food"]], classes)
    stems = table["image_rel"].str.rsplit(".", n=1).str[0]
    frame = pd.DataFrame({
        "image": [str(root / "images" / p) for p in table["image_rel"]], "text": table["text"].to_numpy(),
        "split": table["split"].to_numpy(), "id": stems.to_numpy(), "study_id": stems.to_numpy(),
        "subject_id": stems.to_numpy(), **labels, "_file": table["_file"].to_numpy(), "_row": table["_row"].to_numpy(),
    })  # fmt: skip
    return Prepared(NAME, frame, list(labels), len(rows), dropped)


add_arguments = arguments_adder(build)
