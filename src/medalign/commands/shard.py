"""`medalign shard MANIFEST --out DIR`: write streaming shards (litdata) of every split of a manifest.

Train from them with ``--data.format shards --data.shards DIR`` (or the folder's object-store
URL after uploading it, e.g. ``s3://bucket/mimic-shards``). See docs/shards.md.
"""

from __future__ import annotations

import argparse
import sys

from medalign.commands.flags import HelpFormatter


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medalign shard", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("manifest", help="manifest (CSV or Parquet) whose splits to shard")
    parser.add_argument("--out", required=True, help="shard folder to create (one subfolder per split)")
    parser.add_argument("--label-columns", nargs="*", default=None,
                        help="label columns to keep (default: every column holding only 1 / 0 / -1 / empty)")
    parser.add_argument("--num-workers", type=int, default=1, help="writer processes (litdata optimize)")
    parser.add_argument("--chunk-bytes", default="64MB", help="target chunk size, e.g. 64MB")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    from medalign.data.outside_paths import add_outside_paths_flag

    add_outside_paths_flag(parser)
    return parser


def run(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    # medalign's own lines come through the `medalign` logger's handler (medalign.cli); no root handler, so
    # litdata's INFO chatter (its cache size, three times per split) stays out and its warnings still show

    from medalign.data.manifest import ManifestError
    from medalign.data.shard_writer import write_shards

    try:
        index = write_shards(
            args.manifest, args.out, label_columns=args.label_columns, num_workers=args.num_workers,
            chunk_bytes=args.chunk_bytes, overwrite=args.overwrite, allow_outside_paths=args.allow_outside_paths,
        )
    except (FileExistsError, FileNotFoundError, ManifestError, ValueError, OSError) as err:
        print(f"medalign shard: error: {err}", file=sys.stderr)
        sys.exit(1)
    counts = ", ".join(f"{split} {c['rows']} rows ({c['heatmaps']} with heatmaps)" for split, c in index["splits"].items())
    print(f"wrote {args.out}: {counts}; labels {index['label_columns']}")
    print(f"train from it: medalign fit ... --data.format shards --data.shards {args.out}")
