"""Where the project's configs live, and resolution of bare config / prompt names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

# The shipped configs and prompt files are package data (the repository's top-level configs/ links
# here), so bare names resolve after a non-editable install too; override with MEDALIGN_CONFIG_DIR.
CONFIG_DIR = Path(os.environ.get("MEDALIGN_CONFIG_DIR", Path(__file__).resolve().parent / "configs"))


def resolve_config(name: str | os.PathLike, suffixes: tuple[str, ...] = (".yaml", ".yml")) -> Path:
    """Resolve a config or data file: as given, else inside `CONFIG_DIR` (with or without a suffix).

    Raises:
        FileNotFoundError: naming every place that was tried.
    """
    given = Path(name)
    candidates = [given, CONFIG_DIR / given, *(CONFIG_DIR / given.with_name(given.name + s) for s in suffixes)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"config {str(name)!r} not found; tried {tried}")


def resolve_config_args(args: Sequence[str]) -> list[str]:
    """Replace bare names after ``--config`` / ``-c`` (or ``--config=NAME``) by their resolved path.

    The one place command lines resolve config names: `train.py` / `medalign fit|test`, the
    `gap-sweep` command and benchmark cells all go through it.
    """
    out = list(args)
    for i, arg in enumerate(out):
        if arg in ("--config", "-c") and i + 1 < len(out):
            out[i + 1] = str(resolve_config(out[i + 1]))
        elif arg.startswith("--config="):
            out[i] = "--config=" + str(resolve_config(arg.split("=", 1)[1]))
    return out
