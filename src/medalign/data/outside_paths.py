"""The one flag of `medalign.data.manifest.confine_paths`, importable without numpy/pandas (fast ``-h``)."""

from __future__ import annotations

from typing import Any

OUTSIDE_PATHS_HINT = ("allow them with allow_outside_paths: --data.allow_outside_paths true (fit, test), "
                      "--allow-outside-paths (resize, shard, saliency, geometry), --allow_outside_paths true (gap-sweep)")


def add_outside_paths_flag(parser: Any) -> None:
    """The one command-line flag of `confine_paths` for the argparse commands (``args.allow_outside_paths``)."""
    parser.add_argument("--allow-outside-paths", "--allow_outside_paths", dest="allow_outside_paths", action="store_true",
                        help="accept absolute image/heatmap paths and ../ out of the manifest's folder (default: refuse)")
