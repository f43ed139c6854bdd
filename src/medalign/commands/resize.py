"""`medalign resize MANIFEST --size 512 --out DIR`: a resized copy of any manifest's images and heatmaps.

Writes ``DIR/images_<size>/…`` (each image's path below the manifest's folder kept; PNG, or JPEG
with ``--format jpeg``), ``DIR/heatmaps_<size>/…npy`` (resampled onto the resized image, peak 1),
``DIR/<manifest name>`` (same rows and columns, only ``image``/``heatmap`` rewritten, relative to
DIR) and ``DIR/resize_report.json``; a ``tokenizer/`` beside the manifest is copied. Rules
(short side, 16-bit, sBIT, DICOM): `medalign.prepare.resize`. Re-running skips files already
resized from the same source content (size and SHA-256 recorded beside each output as
``.<name>.source``; timestamps are not trusted), so an interrupted run resumes and a replaced
source is resized again; the manifest is written last, atomically, and only when every file
was read (or ``--on-error drop``). Paths outside the manifest's folder are refused unless
``--allow-outside-paths`` (`medalign.data.manifest.confine_paths`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Literal

from medalign.commands.flags import HelpFormatter
from medalign.run_folder import atomic_path

SHOW_ERRORS = 20


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medalign resize", description=__doc__.split("\n")[0],
                                     epilog="Rules and numbers: docs/data_loading.md", formatter_class=HelpFormatter)  # fmt: skip
    parser.add_argument("manifest", help="a manifest CSV (image paths relative to its folder)")
    parser.add_argument("--size", type=int, required=True, help="short side in pixels after resizing (never upscaled)")
    parser.add_argument("--out", required=True, help="output folder (not the manifest's own folder)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel processes (default: all cores)")
    parser.add_argument("--format", choices=["png", "jpeg"], default="png", help="output format of 8-bit images (16-bit: PNG)")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality with --format jpeg (default: 95)")
    parser.add_argument("--on-error", choices=["error", "drop"], default="error",
                        help="unreadable files: list them and write no manifest, or drop their rows (default: error)")  # fmt: skip
    from medalign.data.outside_paths import add_outside_paths_flag

    add_outside_paths_flag(parser)
    return parser


def run(argv: list[str]) -> Path:
    """Parse `argv`, resize, write the manifest; exit 1 naming the bad files."""
    args = build_parser().parse_args(argv)
    try:
        return resize_manifest(args.manifest, args.out, args.size, args.workers, args.format, args.quality, args.on_error,
                               allow_outside_paths=args.allow_outside_paths)
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f"medalign resize: {err}")


def resize_manifest(
    manifest: str | Path,
    out: str | Path,
    size: int,
    workers: int = 1,
    fmt: Literal["png", "jpeg"] = "png",
    quality: int = 95,
    on_error: Literal["error", "drop"] = "error",
    progress: bool = True,
    allow_outside_paths: bool = False,
) -> Path:
    """Resize every image (and heatmap) of `manifest` into `out`; return the new manifest's path.

    Raises:
        FileNotFoundError: no manifest at `manifest`.
        ManifestError: a path outside the manifest's folder without `allow_outside_paths`
            (nothing is written).
        ValueError: `out` is the manifest's folder, the manifest has no ``image`` column, or (with
            ``on_error="error"``) some files could not be resized — the message lists them.
    """
    import pandas as pd

    manifest, out = Path(manifest), Path(out)
    if not manifest.is_file():
        raise FileNotFoundError(f"no manifest at {manifest}")
    if size < 1:
        raise ValueError(f"--size must be ≥ 1, got {size}")
    root = manifest.parent.resolve()
    if out.resolve() == root:
        raise ValueError(f"--out {out} is the folder of {manifest}: choose another folder (the source is never overwritten)")
    frame = pd.read_csv(manifest, dtype=str, keep_default_na=False)  # every other column is copied verbatim
    if "image" not in frame.columns:
        raise ValueError(f"{manifest} has no 'image' column (columns: {', '.join(frame.columns)})")
    from medalign.data.manifest import confine_paths

    confine_paths(manifest, frame, allow_outside_paths)  # the rule every command applies
    heatmaps = frame["heatmap"] if "heatmap" in frame.columns else pd.Series([""] * len(frame))
    jobs: dict[str, set[str]] = {}
    for image, heatmap in zip(frame["image"], heatmaps):
        jobs.setdefault(image, set()).update([heatmap] if heatmap else [])
    tasks = [(root, out.resolve(), image, sorted(hms), size, fmt, quality) for image, hms in jobs.items()]
    results = _run_all(tasks, workers, progress)

    renamed: dict[str, str] = {}
    bad: dict[str, str] = {}  # source path → reason
    for result in results:
        renamed.update(result["renamed"])
        bad.update(result["errors"])
    if bad and on_error == "error":
        shown = "\n  ".join(f"{path}: {reason}" for path, reason in list(bad.items())[:SHOW_ERRORS])
        more = f"\n  … and {len(bad) - SHOW_ERRORS} more" if len(bad) > SHOW_ERRORS else ""
        raise ValueError(
            f"{len(bad)} file(s) of {manifest} could not be resized; no manifest written (resized files are kept, "
            f"a rerun resumes):\n  {shown}{more}\nfix or remove them, or pass --on-error drop to drop their rows"
        )
    keep = [bool(renamed.get(i)) and (not h or bool(renamed.get(h))) for i, h in zip(frame["image"], heatmaps)]
    frame = frame[keep].copy()
    frame["image"] = [renamed[p] for p in frame["image"]]
    if "heatmap" in frame.columns:
        frame["heatmap"] = [renamed[p] if p else "" for p in frame["heatmap"]]
    return _write(frame, manifest, out, size, bad, len(keep))


def _run_all(tasks: list[tuple], workers: int, progress: bool) -> list[dict]:
    from tqdm import tqdm

    bar = dict(total=len(tasks), desc="resize", unit="img", disable=not progress)
    if workers <= 1 or len(tasks) < 2:
        return [_resize_one(t) for t in tqdm(tasks, **bar)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(_resize_one, tasks, chunksize=max(1, min(32, len(tasks) // (4 * workers)))), **bar))


def _target(rel: str, folder: Path, suffix: str) -> Path:
    """Where source `rel` (relative to the manifest's folder) goes under `folder`, with `suffix`."""
    path = Path(rel)
    if path.is_absolute() or ".." in path.parts:  # allow_outside_paths manifests: a stable unique name
        path = Path("_outside") / f"{hashlib.sha1(rel.encode()).hexdigest()[:10]}_{path.name}"
    return folder / path.with_suffix(suffix)


def source_key(source: Path, *extra: str) -> str:
    """What a resized file was made from: the source's size and SHA-256 (and `extra` keys it depends on)."""
    from medalign.run_folder import file_sha256

    return " ".join([f"{source.stat().st_size}:{file_sha256(source)}", *extra])


def _record_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.source")


def _fresh(target: Path, key: str) -> bool:
    """`target` exists and was made from a source with this `source_key` (content, not timestamps)."""
    record = _record_path(target)
    return target.is_file() and record.is_file() and record.read_text() == key


def _record(target: Path, key: str) -> None:
    record = _record_path(target)
    tmp = record.with_name(f"{record.name}.{os.getpid()}.tmp")
    tmp.write_text(key)
    os.replace(tmp, record)


def _resize_one(task: tuple) -> dict:
    """Resize one image and its heatmaps; report new relative paths and errors by source path (never raises)."""
    import numpy as np

    from medalign.prepare.resize import image_size, resize_heatmap, resize_image

    root, out, rel, heatmaps, size, fmt, quality = task
    source = root / rel
    renamed, errors = {}, {}
    try:
        sixteen = _sixteen_bit(source)
        target = _target(rel, out / f"images_{size}", ".jpg" if fmt == "jpeg" and not sixteen else ".png")
        if target.resolve() == source.resolve():
            raise ValueError("the resized file would overwrite its source")
        key = source_key(source, f"size={size}", f"format={fmt}", f"quality={quality}")
        if _fresh(target, key):
            shape, new_shape = image_size(source), image_size(target)
        else:
            _record_path(target).unlink(missing_ok=True)
            shape, new_shape = resize_image(source, target, size, fmt, quality)
            _record(target, key)
        renamed[rel] = target.relative_to(out).as_posix()
    except Exception as err:  # PIL raises many types for corrupt files
        errors[str(source)] = f"{type(err).__name__}: {err}"
        return {"renamed": renamed, "errors": errors}
    for hm in heatmaps:
        src = root / hm
        try:
            dest = _target(hm, out / f"heatmaps_{size}", ".npy")
            hm_key = source_key(src, f"image={key}")  # redone when its image is
            if not _fresh(dest, hm_key):
                _record_path(dest).unlink(missing_ok=True)
                heatmap = np.load(src, allow_pickle=False) if src.suffix == ".npy" else _png_heatmap(src)
                heatmap = heatmap[0] if heatmap.ndim == 3 and heatmap.shape[0] == 1 else heatmap
                if heatmap.shape != shape:
                    raise ValueError(f"heatmap shape {heatmap.shape} differs from its image {source} {shape}")
                with atomic_path(dest) as tmp:
                    np.save(tmp, resize_heatmap(heatmap, new_shape))
                _record(dest, hm_key)
            renamed[hm] = dest.relative_to(out).as_posix()
        except Exception as err:
            errors[str(src)] = f"{type(err).__name__}: {err}"
    return {"renamed": renamed, "errors": errors}


def _png_heatmap(path: Path):
    from medalign.data.transforms import load_heatmap

    return load_heatmap(path)[0].numpy()


def _sixteen_bit(path: Path) -> bool:
    if path.suffix.lower() == ".dcm":
        return True
    from PIL import Image

    with Image.open(path) as img:
        return img.mode in ("I;16", "I;16B", "I;16L", "I")


def _write(frame, manifest: Path, out: Path, size: int, bad: dict[str, str], rows_in: int) -> Path:
    """The manifest (atomic rename, last), the report, and the tokenizer folder beside the source manifest."""
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = manifest.parent / "tokenizer"
    if tokenizer.is_dir() and not (out / "tokenizer").exists():
        shutil.copytree(tokenizer, out / "tokenizer")
    report = {"source": str(manifest.resolve()), "size": size, "rows_in": rows_in, "rows_out": len(frame),
              "bad_files": bad}  # fmt: skip
    (out / "resize_report.json").write_text(json.dumps(report, indent=2))
    path = out / manifest.name
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    print(f"wrote {path}: {len(frame)} of {rows_in} rows, images_{size}/" + (f"; dropped {len(bad)} bad files" if bad else ""))
    return path
