"""One flag style across commands: ``--ckpt`` for a checkpoint, hyphens between words.

argparse commands spell flags with hyphens (``--batch-size``); the jsonargparse ones (``gap-sweep``,
like ``fit``) name them after config keys (``--label_columns``). Both spellings are accepted there,
and old names keep working as hidden aliases that warn.
"""

from __future__ import annotations

import warnings
from typing import Mapping, Sequence


def rename_deprecated(argv: Sequence[str], renames: Mapping[str, str], prog: str) -> list[str]:
    """`argv` with each deprecated flag (``--old`` or ``--old=value``) replaced by its new name, with a `FutureWarning`."""
    out = []
    for arg in argv:
        flag, eq, value = arg.partition("=")
        if flag in renames:
            warnings.warn(f"{prog}: {flag} is deprecated and will be removed; use {renames[flag]}", FutureWarning, stacklevel=2)
            arg = renames[flag] + eq + value
        out.append(arg)
    return out


def underscore_flags(argv: Sequence[str]) -> list[str]:
    """``--label-columns x`` → ``--label_columns x`` (jsonargparse flags are config keys); values are left alone."""
    out = []
    for arg in argv:
        if arg.startswith("--") and len(arg) > 2:
            flag, eq, value = arg[2:].partition("=")
            arg = "--" + flag.replace("-", "_") + eq + value
        out.append(arg)
    return out
