"""Metrics as pure tensor functions: embedding geometry (`geometry`), clustering scores (`clustering`)
and retrieval ranks / R@K (`retrieval`).

``from medalign.metrics import alignment, uniformity, ...`` keeps working: the geometry metrics are
re-exported here, and so are the retrieval metrics (``retrieval_metrics``, ``pessimistic_rank``, ...).
"""

from medalign.metrics.geometry import *  # noqa: F401,F403
from medalign.metrics.geometry import __all__ as _geometry_all
from medalign.metrics.retrieval import *  # noqa: F401,F403
from medalign.metrics.retrieval import __all__ as _retrieval_all

__all__ = list(_geometry_all) + list(_retrieval_all)
