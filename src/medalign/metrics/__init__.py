"""Metrics as pure tensor functions: embedding geometry (`geometry`) and clustering scores (`clustering`).

``from medalign.metrics import alignment, uniformity, ...`` keeps working: the geometry metrics are
re-exported here.
"""

from medalign.metrics.geometry import *  # noqa: F401,F403
from medalign.metrics.geometry import __all__ as _geometry_all

__all__ = list(_geometry_all)
