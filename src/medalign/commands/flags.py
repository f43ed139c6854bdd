"""One flag style across commands: ``--ckpt`` for a checkpoint, hyphens between words.

argparse commands spell flags with hyphens (``--batch-size``); the jsonargparse ones (``gap-sweep``,
like ``fit``) name them after config keys (``--label_columns``). Both spellings are accepted there,
and old names keep working as hidden aliases that warn.
"""

from __future__ import annotations

import argparse
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


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The command's docstring as written, and ``(default: X)`` after every option whose help does not state its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" not in text and action.option_strings and not action.required
                and action.default not in (None, False, argparse.SUPPRESS)):
            text += " (default: %(default)s)"
        return text


def field_comments(config_class: type) -> dict[str, str]:
    """``name: type = value  # comment`` → {name: comment} of a dataclass's source (its per-field documentation)."""
    import inspect
    import re

    try:
        source = inspect.getsource(config_class)
    except (OSError, TypeError):
        return {}
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^\s+(\w+)\s*:[^#\n]*#\s*(.+)$", source, re.MULTILINE)}
