"""Reading medalign shards: litdata chunks of encoded image bytes, served as `ImageTextDataset` samples.

A shard folder (written by `medalign shard`, `medalign.data.shard_writer`) holds, per split, a
litdata dataset (``<split>/index.json`` + ``chunk-*.bin``; one item per manifest row: the image
and heatmap files' bytes as they were, the report, the raw labels and the row number) and a small
table ``<split>/rows.jsonl`` (the manifest columns of those rows and each row's item index).
``medalign_shards.json`` at the top records the manifest's hash, the label columns and the counts.

Items are read by index through `litdata.StreamingDataset` (its random access: a local folder is
memory-mapped in place; an object-store URL fetches just the item's bytes), and their order comes
from medalign's own samplers. A sample from shards is therefore the sample the manifest path
makes for the same (seed, epoch, row): same rows per epoch, same DDP split, same resume, same
expert stream, and the bytes are decoded by the very same `decode_image` / `load_heatmap`.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import torch

from medalign.data.dataset import ImageTextDataset
from medalign.data.manifest import Manifest
from medalign.data.transforms import decode_image, load_heatmap
from medalign.run_folder import file_sha256

log = logging.getLogger(__name__)

INDEX_FILE = "medalign_shards.json"
ROWS_FILE = "rows.jsonl"
FORMAT = "medalign-shards"
VERSION = 1
# Scratch folder for decoding item bytes with the file-based loaders (memory-backed where available).
SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


def is_remote(location: str) -> bool:
    """True for an object-store URL (``s3://``, ``gs://``, ``azure://``, ``hf://``, litdata's ``local:``)."""
    return "://" in location or location.startswith("local:")


def join(location: str, *parts: str) -> str:
    """`location`/`parts` for a folder or a URL."""
    return "/".join([location.rstrip("/"), *parts]) if is_remote(location) else str(Path(location, *parts))


def fetch(location: str, relative: str, cache_dir: str | Path) -> Path:
    """A local copy of one small file of a shard folder (downloaded through litdata for a URL)."""
    if not is_remote(location):
        path = Path(location, relative)
        if not path.is_file():
            hint = " (not a folder written by `medalign shard`?)" if relative == INDEX_FILE else ""
            raise FileNotFoundError(f"shards {location}: {relative} not found{hint}; write it with `medalign shard MANIFEST --out {location}`")
        return path
    from litdata.streaming.downloader import get_downloader

    local = Path(cache_dir, relative)
    local.parent.mkdir(parents=True, exist_ok=True)
    try:
        get_downloader(location, str(cache_dir), []).download_file(join(location, relative), str(local))
    except Exception as err:  # each object store raises its own types
        raise FileNotFoundError(f"shards {location}: cannot download {relative}: {err}") from err
    return local


class ShardSet:
    """An opened shard folder or URL: its index and, per split, its rows as a `Manifest`.

    Args:
        location: the folder `medalign shard` wrote, or its object-store URL.
        label_columns: label columns the run uses; each must have been sharded.
        cache_dir: where a URL's index and row tables (and litdata's chunk cache) go; default a
            folder under the system temp dir named after the URL.
    """

    def __init__(self, location: str, label_columns: Sequence[str] = (), cache_dir: str | None = None) -> None:
        self.location = str(location)
        if cache_dir is None and is_remote(self.location):
            safe = "".join(c if c.isalnum() else "_" for c in self.location)[-120:]
            cache_dir = os.path.join(tempfile.gettempdir(), "medalign-shards", safe)
        self.cache_dir = cache_dir
        self.index: dict[str, Any] = json.loads(fetch(self.location, INDEX_FILE, cache_dir or "").read_text())
        if self.index.get("format") != FORMAT or self.index.get("version") != VERSION:
            raise ValueError(
                f"shards {self.location}: {INDEX_FILE} is not a {FORMAT} v{VERSION} index "
                f"(format {self.index.get('format')!r}, version {self.index.get('version')!r}); re-run `medalign shard`"
            )
        missing = [c for c in label_columns if c not in self.index["label_columns"]]
        if missing:
            raise ValueError(
                f"shards {self.location} lack label column(s) {missing} (sharded: {self.index['label_columns']}); "
                "re-shard with --label-columns including them, or change data.label_columns"
            )
        self.label_columns = list(label_columns)

    def check_manifest(self, manifest: Path) -> None:
        """Warn when `manifest` (used by ``test``) is not the file the shards were written from."""
        digest = file_sha256(manifest)
        if digest != self.index["manifest_sha256"]:
            log.warning(
                "%s differs from the manifest the shards %s were written from (%s, sha256 %s…): training reads the "
                "shards, `test` reads this manifest; re-run `medalign shard` if the manifest changed",
                manifest, self.location, self.index["manifest"], self.index["manifest_sha256"][:12],
            )

    @property
    def path(self) -> Path:
        """Stands in for the manifest path in messages."""
        return Path(self.location)

    def split(self, name: str) -> Manifest:
        """The rows of one split as a `Manifest` (index = manifest row, column ``shard_index``); empty if absent."""
        if name not in self.index["splits"]:
            empty = pd.DataFrame(columns=["image", "text", "split", "heatmap", "shard_index", *self.label_columns])
            return Manifest(Path(join(self.location, name, ROWS_FILE)), empty, self.label_columns)
        local = fetch(self.location, f"{name}/{ROWS_FILE}", self.cache_dir or "")
        frame = pd.read_json(local, orient="records", lines=True, dtype=False).set_index("row")
        frame.index.name = None
        frame["heatmap"] = frame["heatmap"].fillna("").astype(str)
        return Manifest(Path(join(self.location, name, ROWS_FILE)), frame, self.label_columns)

    def url(self, split: str) -> str:
        """The litdata dataset of one split."""
        return join(self.location, split)


def decode_bytes(data: bytes | memoryview, name: str, reader: Callable[[str], Any]) -> Any:
    """Decode a file's bytes with a file-based `reader` (via a scratch file named like `name`).

    Going through the same loader as the manifest path keeps every format rule (16-bit ``sBIT``,
    DICOM, ``.npy`` heatmaps) identical; the scratch file lives in memory (``/dev/shm``) when it can.
    """
    with tempfile.NamedTemporaryFile(suffix=Path(name).suffix, dir=SCRATCH) as scratch:
        scratch.write(data)
        scratch.flush()
        return reader(scratch.name)


class ShardDataset(ImageTextDataset):
    """`ImageTextDataset` whose image and heatmap bytes come from a split's litdata shards.

    Args:
        rows: the split's rows (`ShardSet.split`, or a subset of them), with column ``shard_index``.
        url: the split's litdata dataset (`ShardSet.url`).
        transform: joint image/heatmap transform.
        cache_dir: litdata's cache for a URL (ignored for a local folder).
        **kwargs: the other `ImageTextDataset` arguments (seed, label policies, view_transform, ...).
    """

    def __init__(self, rows: Manifest, url: str, transform: Any, cache_dir: str | None = None, **kwargs: Any) -> None:
        super().__init__(rows, transform, **kwargs)
        self.url = url
        self.cache_dir = cache_dir
        self.shard_index = rows.frame["shard_index"].to_numpy()
        self.image_names = [str(p) for p in rows.frame["image"]]
        self.heatmap_names = [str(p) for p in rows.frame["heatmap"]]
        self._stream: Any = None
        self._last: tuple[int, dict[str, Any]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_stream"], state["_last"] = None, None  # each worker opens its own reader
        return state

    def _item(self, position: int) -> dict[str, Any]:
        """The shard item of one row (kept while its image and heatmap are read)."""
        if self._last is not None and self._last[0] == position:
            return self._last[1]
        if self._stream is None:
            from litdata import StreamingDataset

            self._stream = StreamingDataset(self.url, cache_dir=self.cache_dir)
        item = self._stream[int(self.shard_index[position])]
        if int(item["row"]) != int(self.rows[position]):
            raise ValueError(
                f"{self.url} item {self.shard_index[position]} holds manifest row {item['row']}, but {self.manifest.path} "
                f"maps row {self.rows[position]} to it: the shards and their row table disagree; re-run `medalign shard`"
            )
        self._last = (position, item)
        return item

    def _read_image(self, position: int) -> torch.Tensor:
        return decode_bytes(self._item(position)["image"], self.image_names[position], lambda p: decode_image(p, self.bit_depth, self.min_size))

    def _read_heatmap(self, position: int) -> torch.Tensor:
        return decode_bytes(self._item(position)["heatmap"], self.heatmap_names[position], load_heatmap)
