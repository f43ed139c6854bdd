"""`medalign benchmark`: a grid of methods × seeds × training fractions through `fit` and `test`.

`grid` expands a study config into cells (each a normal ``train.py`` command line), `runner`
runs them resumably, `aggregate` turns the cells' results into mean ± sd tables, paired
comparisons for the study's questions, and plots. No Lightning here: cells run as processes.
"""

from medalign.benchmark.aggregate import aggregate, collect_results, summarise
from medalign.benchmark.grid import BenchmarkConfig, Cell, MethodSpec, expand_grid, load_benchmark_config
from medalign.benchmark.runner import run_grid

__all__ = [
    "BenchmarkConfig",
    "Cell",
    "MethodSpec",
    "aggregate",
    "collect_results",
    "expand_grid",
    "load_benchmark_config",
    "run_grid",
    "summarise",
]
