"""Which code produced a result: the package version and the git commit of the package source.

`code_identity` is recorded in every ``results.json`` and in each benchmark cell, so a table never
silently mixes numbers from two code versions (``medalign benchmark --aggregate`` refuses to).
The commit is the last one that touched the package directory (``src/medalign``, configs
included), so a documentation commit does not make earlier cells "another version"; ``dirty``
says the package had uncommitted changes when the run started.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(PACKAGE_DIR), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def code_identity() -> dict[str, Any]:
    """``version`` (package), ``commit`` (None outside a git checkout), ``dirty`` and ``code_version``.

    ``code_version`` is the one string compared across results: ``<version>+<commit[:12]>`` with
    ``-dirty`` appended when the package had uncommitted changes (``<version>`` alone without git).
    """
    from medalign import __version__

    commit = _git("log", "-1", "--format=%H", "--", ".") or None
    dirty = bool(_git("status", "--porcelain", "--", ".")) if commit else None
    code_version = __version__ + (f"+{commit[:12]}" if commit else "") + ("-dirty" if dirty else "")
    return {"version": __version__, "commit": commit, "dirty": dirty, "code_version": code_version}
