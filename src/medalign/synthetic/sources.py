"""The embedded datasets by name: ``synthetic`` (templated reports) or ``openi`` (real Open-I text).

`ensure_embedded` is what `data.synthetic` in a config calls: ``{n: 3000, image_size: 64}`` is
the synthetic set, ``{source: openi, image_size: 64}`` the rendered Open-I set; the other keys
are the fields of `SyntheticConfig` / `OpenIConfig`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SOURCES = ("synthetic", "openi", "gaze")


def ensure_embedded(out_dir: str | Path, spec: dict[str, Any]) -> Path:
    """Return `out_dir/manifest.csv`, generating the embedded dataset `spec` describes if absent."""
    spec = dict(spec)
    source = spec.pop("source", "synthetic")
    if source == "synthetic":
        from medalign.synthetic.generate import SyntheticConfig, ensure_synthetic

        return ensure_synthetic(out_dir, SyntheticConfig(**spec))
    if source == "openi":
        from medalign.synthetic.openi import OpenIConfig, ensure_openi

        return ensure_openi(out_dir, OpenIConfig(**spec))
    if source == "gaze":  # the gaze test bed (docs/testbed.md)
        from medalign.synthetic.testbed.generate import TestbedConfig, ensure_testbed

        return ensure_testbed(out_dir, TestbedConfig(**spec))
    raise ValueError(f"data.synthetic.source {source!r} is not an embedded dataset; expected one of {SOURCES}")
