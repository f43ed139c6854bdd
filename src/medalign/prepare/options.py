"""Typed adapter options → argparse: one source of truth, the adapter's ``build`` signature.

Every adapter exposes ``build(root, *, option=default, ...) -> Prepared`` with typed keyword
options documented in its Google docstring (``Args:``). `add_arguments` turns that signature into
``--option`` arguments (help from the docstring, choices from ``Literal``), and `from_namespace`
picks a parsed namespace's values back out, so the command line and a notebook call

    >>> from medalign.prepare import chexpert
    >>> prepared = chexpert.build("/data/CheXpert-v1.0-small", views="all", seed=1)

are the same function. `adapter` marks a ``build`` function and keeps the transitional
``build(root, argparse.Namespace)`` call form working.

Type → argument: ``bool`` → ``--flag [true|false]`` (bare flag = true); ``Literal[...]`` →
choices; ``int`` / ``float`` / ``str`` / ``Path`` → that type; ``X | None`` → ``X``, default None;
``list[X]`` / ``Sequence[X]`` → ``nargs="+"``; ``tuple[X, X]`` → ``nargs=2``. A keyword without a
default is a required option.

Why not jsonargparse's own parser (``add_function_arguments``): it spells options with underscores
(``--val_fraction``), needs a value after a bool (``--only-annotated`` alone is an error) and JSON for
lists and tuples (``--views '[PA]'``, ``--heatmap-size '[64,64]'``), so every documented command
would change; and importing it (about 0.2 s) would triple ``medalign prepare -h``. Help texts are
read with ``docstring_parser``, the docstring parser jsonargparse uses for LightningCLI's ``--help``.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal, Sequence, Union


def truth(value: str) -> bool:
    """``true`` / ``false`` (also 1/0, yes/no, on/off) as a bool; anything else is an argparse error."""
    lowered = str(value).strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def option_docs(fn: Callable) -> dict[str, str]:
    """``{parameter: help}`` from the ``Args:`` section of `fn`'s Google docstring (lines joined).

    Parsed by ``docstring_parser``, the parser jsonargparse (LightningCLI's ``--help``) uses.
    """
    import docstring_parser  # here, not at the top: ``medalign prepare -h`` builds no adapter options

    doc = docstring_parser.parse(inspect.getdoc(fn) or "", docstring_parser.DocstringStyle.GOOGLE)
    return {p.arg_name: " ".join((p.description or "").split()) for p in doc.params}


def keyword_options(fn: Callable) -> dict[str, inspect.Parameter]:
    """The keyword-only parameters of `fn` (its options), in order."""
    fn = inspect.unwrap(fn)
    return {n: p for n, p in inspect.signature(fn).parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _argument_spec(hint: Any) -> dict[str, Any]:
    """argparse keyword arguments for a type hint."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"unsupported option type {hint}")
        return _argument_spec(rest[0])
    if hint is bool:
        return {"type": truth, "nargs": "?", "const": True, "metavar": "true|false"}
    if origin is Literal:
        return {"type": type(args[0]), "choices": list(args)}
    if origin in (list, Sequence, typing.Sequence) or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
        inner = _argument_spec(args[0])
        return {**inner, "nargs": "+"}
    if origin is tuple:
        inner = _argument_spec(args[0])
        return {**inner, "nargs": len(args)}
    if hint in (int, float, str):
        return {"type": hint}
    if hint is Path:
        return {"type": str}
    raise TypeError(f"unsupported option type {hint}")


def add_arguments(parser: argparse.ArgumentParser, fn: Callable, skip: Sequence[str] = ()) -> None:
    """Add one ``--option`` per keyword option of `fn` (options the parser already has are skipped)."""
    hints = typing.get_type_hints(inspect.unwrap(fn))
    helps = option_docs(inspect.unwrap(fn))
    for name, param in keyword_options(fn).items():
        flag = "--" + name.replace("_", "-")
        if name in skip or flag in parser._option_string_actions:
            continue
        spec = _argument_spec(hints[name])
        required = param.default is inspect.Parameter.empty
        text = helps.get(name, "")
        if not required:
            default = param.default
            shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
            shown = str(shown).lower() if isinstance(shown, bool) else shown
            text = f"{text.rstrip('.')} (default: {shown})".strip() if default is not None else text
            spec["default"] = list(default) if isinstance(default, tuple) and spec.get("nargs") == "+" else default
        parser.add_argument(flag, dest=name, required=required, help=text, **spec)


def from_namespace(fn: Callable, namespace: argparse.Namespace) -> dict[str, Any]:
    """The values of `fn`'s keyword options found in `namespace` (others ignored)."""
    values = vars(namespace)
    return {name: values[name] for name in keyword_options(fn) if name in values}


def adapter(build: Callable) -> Callable:
    """Mark an adapter's ``build(root, *, ...)``; also accept ``build(root, namespace)`` (the CLI form)."""

    @functools.wraps(build)
    def wrapper(root: str | Path, namespace: argparse.Namespace | None = None, /, **options: Any):
        if namespace is not None:
            if not isinstance(namespace, argparse.Namespace):
                raise TypeError(f"{build.__module__}.build takes keyword options, got positional {namespace!r}")
            options = from_namespace(build, namespace) | options
        return build(Path(root), **options)

    return wrapper


def arguments_adder(build: Callable) -> Callable[[argparse.ArgumentParser], None]:
    """``add_arguments(parser)`` for the registry: the generated arguments of `build`."""

    def add(parser: argparse.ArgumentParser) -> None:
        add_arguments(parser, build)

    return add
