"""Configuration mistakes as one readable line: the key, the file and line it came from, a "did you mean".

`ConciseParser` replaces jsonargparse's error output (the whole usage block, then a nested
message) for `medalign fit/test/...`. With ``--debug`` (or ``MEDALIGN_DEBUG=1``) the parser
raises instead, so the full traceback shows.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Iterable, NoReturn, get_type_hints

from lightning.pytorch.cli import LightningArgumentParser

from medalign.training.config_check import KEY_HINT, unknown_key_message

DEBUG_ENV = "MEDALIGN_DEBUG"


def debug_enabled() -> bool:
    """Whether ``--debug`` / ``MEDALIGN_DEBUG=1`` asked for tracebacks."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


class ConciseParser(LightningArgumentParser):
    """`LightningArgumentParser` whose errors are one line plus a hint, not the usage block."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if debug_enabled() or not self.exit_on_error:
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        sys.stderr.write(explain(message, _known_keys(parser), _config_files(sys.argv[1:])) + "\n")
        self.exit(2)


def explain(message: str, known: Iterable[str], config_files: list[Path]) -> str:
    """One line for a jsonargparse error: the unknown key, where it is set, the closest known key.

    Args:
        message: jsonargparse's error message.
        known: accepted dotted keys (``data.batch_size``, ``model.init_args.lr``, …).
        config_files: the ``--config`` files given, searched for the key's line.
    """
    key = unknown_key(message)
    if key is None:
        lines = [line.strip() for line in message.splitlines() if line.strip() and not line.strip().startswith("Given value")]
        return f"medalign: error: {' '.join(lines[:6])}\n  (rerun with --debug for the full message)"
    return f"medalign: error: {unknown_key_message(key, known, config_files, sys.argv[1:])}\n  {KEY_HINT}"


def unknown_key(message: str) -> str | None:
    """The dotted key jsonargparse rejected, or None when the error is about something else."""
    match = re.search(r"(?:Group '([^']+)' )?does not accept (?:option|nested key) '([^']+)'", message)
    if match:
        return f"{match.group(1)}.{match.group(2)}" if match.group(1) else match.group(2)
    nested = re.search(r"Option '([^']+)' is not accepted", message) or re.search(r"Key '([^']+)' is not expected", message)
    if nested:
        parent = re.search(r'Parser key "([^"]+)"', message)
        prefix = f"{parent.group(1)}.init_args." if parent and "class_path" in message else (f"{parent.group(1)}." if parent else "")
        return prefix + nested.group(1)
    return None


def _known_keys(parser) -> list[str]:
    keys = [a.dest for a in parser._actions if a.dest and a.dest not in ("help", "config")]
    return keys + [f"model.init_args.{name}" for name in _class_options("medalign.training.module.ContrastiveModule")]


def _class_options(class_path: str) -> list[str]:
    """A class's init options, with the fields of dataclass-typed options spelled out (``model.lr``)."""
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
        hints = get_type_hints(cls.__init__)
    except Exception:  # a suggestion is a courtesy; never fail the error message over it
        return []
    names = []
    for param in inspect.signature(cls.__init__).parameters.values():
        if param.name == "self":
            continue
        names.append(param.name)
        hint = hints.get(param.name)
        if is_dataclass(hint):
            names += [f"{param.name}.{f.name}" for f in fields(hint)]
    return names


def _config_files(argv: list[str]) -> list[Path]:
    files = []
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith(("--config=", "-c=")) else (
            argv[i + 1] if arg in ("--config", "-c") and i + 1 < len(argv) else None)
        if value and Path(value).is_file():
            files.append(Path(value))
    return files
