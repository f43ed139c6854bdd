"""`medalign cone-effect`: an alias of `medalign benchmark` for the cone-effect study (kept for old scripts).

    medalign benchmark --config benchmark/cone_effect.yaml --dry-run     # what each cell needs
    medalign benchmark --config benchmark/cone_effect.yaml               # run the missing cells
    medalign benchmark --config benchmark/cone_effect.yaml --aggregate   # Table 1 + Fig. 3 only

The study itself (cells, resuming, Table 1, Fig. 3) is `medalign.benchmark.cone_effect`.
"""

from __future__ import annotations

from typing import Any


def run(argv: list[str]) -> dict[str, Any]:
    from medalign.commands import benchmark

    return benchmark.run(argv)
