"""The embedded datasets by name: ``synthetic`` (templated reports) or ``openi`` (real Open-I text).

`ensure_embedded` is what `data.synthetic` in a config calls: ``{n: 3000, image_size: 64}`` is
the synthetic set, ``{source: openi, image_size: 64}`` the rendered Open-I set; the other keys
are the fields of `SyntheticConfig` / `OpenIConfig`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

SOURCES = ("synthetic", "openi", "gaze")
log = logging.getLogger(__name__)


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


def ensure_embedded_at(manifest: str | Path, spec: dict[str, Any]) -> Path | None:
    """Generate the embedded dataset of a config's ``data.synthetic`` when `manifest` is where it belongs.

    A manifest already there is returned as is, except a gaze test bed, which must match the spec
    and this code's `TESTBED_VERSION` (`testbed.generate.ensure_testbed`).

    `spec` names its own location (``manifest: data/synthetic/manifest.csv``); a different, missing
    `manifest` (a typo, a real dataset not yet prepared) is left for the caller to report as missing —
    never filled with synthetic pairs. Generation is announced in the log.

    Returns:
        The generated manifest, or None when `manifest` is not the spec's location.
    """
    spec = dict(spec)
    home = spec.pop("manifest", None)
    manifest = Path(manifest)
    if home is not None and Path(home).resolve() != manifest.resolve():
        return None
    if manifest.exists():  # generated before: the generator checks it is still what the spec asks (gaze test bed)
        return ensure_embedded(manifest.parent, spec) if home is not None else None
    if home is None:
        log.warning("data.synthetic has no `manifest` key: generating at %s; add `manifest: %s` to the config's "
                    "data.synthetic so that a mistyped --data.manifest is an error instead", manifest, manifest)
    log.info("generating the embedded %s dataset at %s (data.synthetic; first use only)",
             spec.get("source", "synthetic"), manifest.parent)
    return ensure_embedded(manifest.parent, spec)
