"""Embedding extraction with an on-disk cache: encoders run once per (weights, manifest, split, settings).

Layout of one cache entry, ``<cache_dir>/<key>/``::

    image.npy   float32 (N, D) L2-normalised image embeddings
    text.npy    float32 (N, D) L2-normalised report embeddings
    index.npy   int64 (N,)     manifest rows (0-based, header excluded)
    labels.npy  float32 (N, K) 1 / 0 / NaN, columns = key.json "label_names"
    texts.json  list[str]      the reports as encoded (whitespace-cleaned)
    key.json    what the key hashes (encoder fingerprint, manifest hash, split, settings)

Every evaluator (zero-shot, retrieval, linear probe, report retrieval, λ-sweep) reads these
arrays; `get_embeddings` is the one public entry point.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from medalign.data.dataset import clean_report
from medalign.data.labels import BlankPolicy, UncertainPolicy
from medalign.data.manifest import Manifest, read_manifest
from medalign.data.skips import BadRow, SkipLedger
from medalign.data.transforms import PairTransform, decode_image
from medalign.evaluation.encoders import Encoder
from medalign.run_folder import atomic_path, file_sha256

log = logging.getLogger(__name__)

CACHE_VERSION = 4  # 2: the key covers the manifest folder and image files; 3: JPEGs DCT-reduced (fast decode); 4: open_clip's eval preprocess on full decodes
DEFAULT_CACHE_DIR = Path(os.environ.get("MEDALIGN_CACHE_DIR", "runs/cache"))


@dataclass
class EmbeddingSet:
    """Cached embeddings of one manifest split under one encoder.

    Attributes:
        image: L2-normalised image embeddings (N, D) float32.
        text: L2-normalised report embeddings (N, D) float32.
        labels: (N, K) float32, 1 / 0 / NaN (unknown), columns = `label_names`.
        label_names: label columns.
        index: manifest rows (N,) int64.
        texts: the N reports.
        key: the cache key (a hex digest) these arrays are stored under.
    """

    image: np.ndarray
    text: np.ndarray
    labels: np.ndarray
    label_names: list[str]
    index: np.ndarray
    texts: list[str]
    key: str

    def __len__(self) -> int:
        return len(self.index)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(image, text) as torch tensors sharing memory with the arrays."""
        return torch.from_numpy(self.image), torch.from_numpy(self.text)


class _Images(Dataset):
    """Images of a manifest split, preprocessed for one encoder; yields (image, position, error).

    Under ``skip`` an unreadable image yields zeros and its error message (the row is then
    left out of the embeddings); under ``raise`` it raises naming the file.
    """

    def __init__(self, paths: list[str], transform: PairTransform, on_error: Literal["raise", "skip"] = "raise") -> None:
        self.paths, self.transform, self.on_error = paths, transform, on_error

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, str]:
        try:
            image, source_size = decode_image(self.paths[i])  # full size: the exported model's preprocess sees the file
        except Exception as err:  # PIL raises many types for corrupt files
            if self.on_error == "raise":
                raise OSError(f"cannot read image {self.paths[i]}: {err}") from err
            size, channels = getattr(self.transform, "image_size", 224), getattr(self.transform, "channels", 3)
            return torch.zeros(channels, size, size), i, f"cannot read image: {err}"
        return self.transform(image, source_size=source_size)[0], i, ""


def data_fingerprint(manifest: Manifest, mode: Literal["stat", "content"] = "stat") -> str:
    """Hash of what one split's embeddings are computed from, besides the encoder.

    The manifest's bytes, its resolved folder (a byte-identical manifest elsewhere points at
    other images) and, per image, its size and modification time (``stat``) or its bytes
    (``content``: slower, survives copies that reset mtimes).

    Args:
        manifest: the split's rows.
        mode: ``stat`` or ``content``.
    """
    if mode not in ("stat", "content"):
        raise ValueError(f"image fingerprint mode must be 'stat' or 'content', got {mode!r}")
    digest = hashlib.sha256()
    digest.update(file_sha256(manifest.path).encode())
    digest.update(str(manifest.root.resolve()).encode())
    for path in manifest.image_paths():
        try:
            if mode == "content":
                digest.update(file_sha256(path).encode())
            else:
                stat = path.stat()
                digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()


def cache_key(encoder: Encoder, manifest_hash: str, split: str, on_error: str = "raise") -> tuple[str, dict[str, Any]]:
    """The hex key and the JSON-able description it hashes (a ``skip`` entry may lack rows)."""
    description = {
        "version": CACHE_VERSION,
        "encoder": encoder.fingerprint,
        "manifest": manifest_hash,
        "split": split,
        "settings": encoder.settings,
    }
    if on_error != "raise":
        description["on_error"] = on_error
    digest = hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:32]
    return digest, description


def get_embeddings(
    encoder: Encoder,
    manifest_path: str | Path,
    split: str = "test",
    label_columns: Sequence[str] = (),
    cache_dir: str | Path | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    device: torch.device | str | None = None,
    uncertain: UncertainPolicy = "zeros",
    progress: bool = True,
    blank: BlankPolicy = "zeros",
    image_fingerprint: Literal["stat", "content"] = "stat",
    on_error: Literal["raise", "skip"] = "raise",
    max_skip_share: float = 0.01,
    bad_rows_path: str | Path | None = None,
    allow_outside_paths: bool = False,
) -> EmbeddingSet:
    """Embeddings of one manifest split, from the cache or by running `encoder` once.

    Args:
        encoder: the frozen model (see `medalign.evaluation.encoders`).
        manifest_path: manifest file; its bytes, resolved folder and the split's image files
            (`data_fingerprint`) are part of the key.
        split: ``train``, ``val`` or ``test``.
        label_columns: label columns returned in `EmbeddingSet.labels` (read from the manifest,
            so other columns never force re-encoding).
        cache_dir: cache root; default ``$MEDALIGN_CACHE_DIR`` or ``runs/cache``.
        batch_size: images / reports per encoder call.
        num_workers: image-loading worker processes.
        device: where the encoder runs; default CUDA when available.
        uncertain: policy for -1 labels.
        progress: show a tqdm bar while encoding.
        blank: policy for empty ("not mentioned") labels (`medalign.data.labels`).
        image_fingerprint: how images enter the key: ``stat`` (size, mtime) or ``content`` (bytes).
        on_error: ``raise`` on an unreadable image, or ``skip``: leave its row out of the
            embeddings (counted, logged, listed in `bad_rows_path`).
        max_skip_share: under ``skip``, fail when more than this share of the split is unreadable.
        bad_rows_path: CSV file the skipped rows are appended to (`medalign.data.skips`).
        allow_outside_paths: read image paths outside the manifest's folder (`confine_paths`).

    Raises:
        ValueError: the split has no rows.
        TooManyBadRows: more than `max_skip_share` of the split is unreadable.
    """
    manifest_path = Path(manifest_path)
    manifest = read_manifest(manifest_path, list(label_columns), check_files=False, allow_outside_paths=allow_outside_paths).split(split)
    if len(manifest) == 0:
        raise ValueError(f"{manifest_path} has no rows with split {split!r}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    key, description = cache_key(encoder, data_fingerprint(manifest, image_fingerprint), split, on_error)
    folder = Path(cache_dir or DEFAULT_CACHE_DIR) / key
    labels = manifest.labels(uncertain, blank)
    rows = manifest.frame.index.to_numpy()
    if (folder / "key.json").is_file():
        log.info("embeddings of %s[%s] from cache %s", manifest_path, split, folder)
        return _read(folder, labels, rows, list(label_columns), key)
    ledger = SkipLedger(split, len(manifest), max_skip_share, Path(bad_rows_path) if bad_rows_path else None)
    image, text, index, texts = _encode(encoder, manifest, batch_size, num_workers, device, progress, on_error, ledger)
    labels = labels[np.searchsorted(rows, index)] if len(index) < len(rows) else labels
    description.update(encoder_name=encoder.name, manifest_path=str(manifest_path), n=len(index), skipped=ledger.count)
    _write(folder, image, text, index, texts, labels, list(label_columns), description)
    return EmbeddingSet(image, text, labels, list(label_columns), index, texts, key)


@torch.no_grad()
def _encode(
    encoder: Encoder,
    manifest: Manifest,
    batch_size: int,
    num_workers: int,
    device: torch.device | str | None,
    progress: bool,
    on_error: Literal["raise", "skip"] = "raise",
    ledger: SkipLedger | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Run both towers over the split's readable rows, batched, without gradients, autocast (bf16) on GPU."""
    from medalign.progress import track

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    encoder.to(device)
    rows = manifest.frame.index.to_numpy().astype(np.int64)
    paths = [str(p) for p in manifest.image_paths()]
    loader = DataLoader(_Images(paths, encoder.transform, on_error), batch_size=batch_size, num_workers=num_workers, shuffle=False)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    image_chunks, kept = [], []
    name = f"{manifest.path.name}[{manifest.frame['split'].iloc[0]}]"
    with autocast:
        for images, positions, errors in track(loader, desc=f"encoding images {name}", enabled=None if progress else False, unit="batch"):
            good = torch.tensor([not e for e in errors], dtype=torch.bool)
            bad = [BadRow(int(rows[p]), paths[p], e) for p, e in zip(positions.tolist(), errors) if e]
            if bad and ledger is not None:
                ledger.record(bad)
            if good.any():
                image_chunks.append(encoder.encode_images(images[good].to(device, non_blocking=True)).float().cpu())
                kept.extend(positions[good].tolist())
        if not kept:
            raise RuntimeError(f"no readable image in {name}")
        texts = [clean_report(manifest.frame["text"].iloc[p]) for p in kept]
        text_chunks = []
        for start in track(range(0, len(texts), batch_size), desc=f"encoding reports {name}",
                           enabled=None if progress else False, unit="batch"):
            text_chunks.append(encoder.encode_texts(texts[start : start + batch_size]).float().cpu())
    if ledger is not None and ledger.count:
        log.warning("%s: %d unreadable row(s) left out of the embeddings%s", name, ledger.count,
                    f"; listed in {ledger.path}" if ledger.path else "")
    image = torch.cat(image_chunks).numpy().astype(np.float32)  # (N', D)
    text = torch.cat(text_chunks).numpy().astype(np.float32)  # (N', D)
    return image, text, rows[kept], texts


def encode_strings(
    encoder: Encoder,
    texts: Sequence[str],
    cache_dir: str | Path | None = None,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Embed free strings (e.g. zero-shot prompts), cached by (encoder, settings, strings).

    Returns:
        L2-normalised float32 (len(texts), D).
    """
    description = {"version": CACHE_VERSION, "encoder": encoder.fingerprint, "settings": encoder.settings, "texts": list(texts)}
    key = "strings-" + hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:32]
    path = Path(cache_dir or DEFAULT_CACHE_DIR) / f"{key}.npy"
    if path.is_file():
        return np.load(path)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    encoder.to(device)
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        chunks = [encoder.encode_texts(list(texts[s : s + batch_size])).float().cpu() for s in range(0, len(texts), batch_size)]
    out = torch.cat(chunks).numpy().astype(np.float32)
    with atomic_path(path) as tmp:
        np.save(tmp, out)
    return out


def _write(
    folder: Path,
    image: np.ndarray,
    text: np.ndarray,
    index: np.ndarray,
    texts: list[str],
    labels: np.ndarray,
    label_names: list[str],
    description: dict[str, Any],
) -> None:
    """Write into a temporary sibling folder, then rename: readers never see half an entry."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    np.save(tmp / "image.npy", image)
    np.save(tmp / "text.npy", text)
    np.save(tmp / "index.npy", index)
    np.save(tmp / "labels.npy", labels)
    (tmp / "texts.json").write_text(json.dumps(texts))
    (tmp / "key.json").write_text(json.dumps({**description, "label_names": label_names}, indent=2))
    try:
        os.replace(tmp, folder)
    except OSError:  # another process wrote the same entry first
        shutil.rmtree(tmp, ignore_errors=True)


def _read(folder: Path, labels: np.ndarray, rows: np.ndarray, label_names: list[str], key: str) -> EmbeddingSet:
    """Load a cache entry; labels come from the manifest so any label columns can be asked for.

    `rows` are the split's manifest rows (sorted), `labels` theirs; an entry that left rows out
    (``skip``) gets the labels of the rows it kept.
    """
    index = np.load(folder / "index.npy")
    return EmbeddingSet(
        image=np.load(folder / "image.npy"),
        text=np.load(folder / "text.npy"),
        labels=labels if len(index) == len(rows) else labels[np.searchsorted(rows, index)],
        label_names=label_names,
        index=index,
        texts=json.loads((folder / "texts.json").read_text()),
        key=key,
    )
