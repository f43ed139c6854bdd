"""`medalign prepare <dataset> --root RAW --out DIR`: a real dataset, as published, → the standard manifest.

Writes ``DIR/manifest.csv`` (images referenced in place, relative to DIR) and
``DIR/prepare_report.json`` (rows read, written, dropped and why). Datasets and their options:
``medalign prepare <dataset> -h``; layouts: docs/datasets.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterable

from medalign.commands.flags import HelpFormatter
from medalign.prepare import REGISTRY, load_adapter
from medalign.prepare.options import truth


def build_parser(datasets: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The ``medalign prepare`` parser, with the adapter options of `datasets` (None: every dataset).

    Only those adapters are imported, so ``run`` passes just the dataset being prepared and
    ``medalign prepare --help`` imports none.
    """
    with_options = set(REGISTRY if datasets is None else datasets)
    parser = argparse.ArgumentParser(prog="medalign prepare", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    for name, spec in REGISTRY.items():
        adapter = load_adapter(name) if name in with_options else None
        doc = (adapter.__doc__ or spec.summary).strip() if adapter is not None else spec.summary
        p = sub.add_parser(name, help=spec.summary, description=doc, formatter_class=HelpFormatter)
        p.add_argument("--root", required=True, help="the dataset's folder, as downloaded")
        p.add_argument("--out", required=True, help="output folder for manifest.csv and prepare_report.json")
        p.add_argument("--copy", action="store_true", help="copy images under OUT/images/ instead of referencing them")
        p.add_argument("--resize", type=int, default=None, metavar="SHORT_SIDE",
                       help="write a PNG cache with this short side under OUT/images_<N>/ and use it")  # fmt: skip
        p.add_argument("--missing", choices=["error", "drop"], default="error", help="missing image files: stop, or drop and count")
        p.add_argument("--seed", type=int, default=0, help="seed of every random split or subset")
        p.add_argument("--check-images", type=truth, default=True, metavar="true|false",
                       help="check that every image exists (false: metadata-only manifest, marked in the report)")  # fmt: skip
        if adapter is not None:
            adapter.add_arguments(p)
    return parser


def _dataset(argv: list[str]) -> list[str]:
    """[DATASET]: the first token that is not an option (the top level has only -h), if registered."""
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    return [first] if first in REGISTRY else []


def run(argv: list[str]) -> Path:
    """Parse `argv`, build and write the manifest, print a summary; exit 1 with the reason on bad input."""
    args = build_parser(_dataset(argv)).parse_args(argv)
    from medalign.prepare.base import AdapterError
    from medalign.prepare.writer import summary, write_manifest

    root = Path(args.root)
    if not root.is_dir():
        sys.exit(f"medalign prepare {args.dataset}: --root {root} is not a folder")
    try:
        prepared = load_adapter(args.dataset).build(root, args)
        path = write_manifest(
            prepared, args.out, root=root, copy=args.copy, resize=args.resize, missing=args.missing,
            check_images=args.check_images,
            options={k: v for k, v in vars(args).items()},
        )  # fmt: skip
    except AdapterError as err:
        sys.exit(f"medalign prepare {args.dataset}: {err}" + mark_failed(Path(args.out), args.dataset, str(err)))
    (path.parent / FAILED_MARKER).unlink(missing_ok=True)  # this run succeeded: its manifest is current
    print(summary(path.parent / "prepare_report.json"))
    print(f"wrote {path}")
    return path


FAILED_MARKER = "PREPARE_FAILED.txt"


def mark_failed(out: Path, dataset: str, error: str) -> str:
    """After a failed rerun, mark an earlier manifest in `out` as not current; the note for the error."""
    if not (out / "manifest.csv").is_file():
        return ""
    import time

    (out / FAILED_MARKER).write_text(
        f"{time.strftime('%Y-%m-%dT%H:%M:%S')} medalign prepare {dataset} FAILED; manifest.csv here is from an "
        f"earlier successful run and was not replaced.\n{error}\n"
    )
    return (f"\n(the manifest.csv in {out} is from an earlier successful run and was NOT replaced; "
            f"{out / FAILED_MARKER} records this failure)")
