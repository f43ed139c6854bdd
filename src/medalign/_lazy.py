"""PEP 562 lazy exports: a package's public names import their module on first access.

Keeps ``import medalign`` and the ``medalign prepare`` / ``--help`` paths free of torch and
pandas (tests/test_cli.py) while ``from medalign import ImageTextDataset`` still works.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Mapping


def lazy_exports(package: str, home: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for `package` serving the names in `home`.

    Args:
        package: the package's ``__name__``.
        home: public name → the module (absolute) that defines it.

    Returns:
        (``__getattr__``, ``__dir__``) to assign at the package's top level.
    """

    def __getattr__(name: str) -> Any:
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home[name]), name)
        setattr(sys.modules[package], name, value)  # cached: later accesses skip this hook
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *home})

    return __getattr__, __dir__
