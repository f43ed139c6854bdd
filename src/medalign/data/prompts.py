"""Zero-shot prompt sets stored as editable JSON (`configs/prompts/*.json`).

Two forms are accepted per class:

* GLoRIA-style parts, expanded as the product ``" ".join((severity, subtype, location))``
  (any list may hold ``""``)::

      {"Edema": {"severity": ["", "mild"], "subtype": ["pulmonary edema"], "location": [""]}}

* a plain list of prompts::

      {"Edema": ["pulmonary edema", "mild pulmonary edema"]}
"""

from __future__ import annotations

import itertools
import json
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

PARTS = ("severity", "subtype", "location")


def expand_prompt_parts(parts: dict[str, Sequence[str]]) -> list[str]:
    """All " ".join(severity, subtype, location) combinations, whitespace-normalised, in order."""
    lists = [parts.get(key) or [""] for key in PARTS]
    return [" ".join(" ".join(combo).split()) for combo in itertools.product(*lists)]


def load_prompts(
    path: str | Path,
    classes: Sequence[str] | None = None,
    max_per_class: int | None = None,
    seed: int = 0,
) -> dict[str, list[str]]:
    """Read a prompt file into ``{class: [prompt, ...]}``.

    Args:
        path: JSON prompt file (see module docstring for its two forms).
        classes: classes to return, in this order; none → every class in the file.
        max_per_class: keep at most this many prompts per class, a deterministic
            subsample (same `seed` → same prompts); none → all.
        seed: seed of that subsample.

    Raises:
        FileNotFoundError: `path` does not exist.
        KeyError: a requested class is not in the file.
        ValueError: a class entry has neither form, or expands to no prompt.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prompt file {path} does not exist")
    data = json.loads(path.read_text())
    names = list(classes) if classes is not None else list(data)
    missing = [name for name in names if name not in data]
    if missing:
        raise ValueError(f"data.label_columns {missing} have no prompts in {path} (it has {sorted(data)}): add them to the "
                         "prompt file, or pass a prompt file for these classes with --data.prompts")
    prompts = {}
    for name in names:
        entry = data[name]
        if isinstance(entry, dict):
            unknown = set(entry) - set(PARTS)
            if unknown:
                raise ValueError(f"{path}: class {name!r} has unknown keys {sorted(unknown)}; expected {PARTS}")
            raw = expand_prompt_parts(entry)
        elif isinstance(entry, list) and all(isinstance(p, str) for p in entry):
            raw = entry
        else:
            raise ValueError(f"{path}: class {name!r} must map to a list of prompts or to {{{', '.join(PARTS)}}} lists")
        unique = list(dict.fromkeys(" ".join(p.split()) for p in raw if p.strip()))
        if not unique:
            raise ValueError(f"{path}: class {name!r} has no non-empty prompt")
        if max_per_class is not None and len(unique) > max_per_class:
            rng = np.random.default_rng([seed, zlib.crc32(name.encode())])  # independent of class order
            keep = rng.choice(len(unique), size=max_per_class, replace=False)
            unique = [unique[k] for k in sorted(keep)]
        prompts[name] = unique
    return prompts
