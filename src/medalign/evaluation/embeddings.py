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
from medalign.data.transforms import PairTransform, decode_image
from medalign.evaluation.encoders import Encoder, file_hash

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # 2: the key covers the manifest folder and image files
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
    """Images of a manifest split, preprocessed for one encoder; yields (image, position)."""

    def __init__(self, paths: list[str], transform: PairTransform) -> None:
        self.paths, self.transform = paths, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        try:
            image, source_size = decode_image(self.paths[i], min_size=self.transform.image_size)  # DCT-reduced JPEGs
        except Exception as err:  # PIL raises many types for corrupt files
            raise OSError(f"cannot read image {self.paths[i]}: {err}") from err
        return self.transform(image, source_size=source_size)[0], i


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
    digest.update(file_hash(manifest.path).encode())
    digest.update(str(manifest.root.resolve()).encode())
    for path in manifest.image_paths():
        try:
            if mode == "content":
                digest.update(file_hash(path).encode())
            else:
                stat = path.stat()
                digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()


def cache_key(encoder: Encoder, manifest_hash: str, split: str) -> tuple[str, dict[str, Any]]:
    """The hex key and the JSON-able description it hashes."""
    description = {
        "version": CACHE_VERSION,
        "encoder": encoder.fingerprint,
        "manifest": manifest_hash,
        "split": split,
        "settings": encoder.settings,
    }
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

    Raises:
        ValueError: the split has no rows.
    """
    manifest_path = Path(manifest_path)
    manifest = read_manifest(manifest_path, list(label_columns), check_files=False).split(split)
    if len(manifest) == 0:
        raise ValueError(f"{manifest_path} has no rows with split {split!r}")
    key, description = cache_key(encoder, data_fingerprint(manifest, image_fingerprint), split)
    folder = Path(cache_dir or DEFAULT_CACHE_DIR) / key
    labels = manifest.labels(uncertain, blank)
    if (folder / "key.json").is_file():
        log.info("embeddings of %s[%s] from cache %s", manifest_path, split, folder)
        return _read(folder, labels, list(label_columns), key)
    image, text, index, texts = _encode(encoder, manifest, batch_size, num_workers, device, progress)
    description.update(encoder_name=encoder.name, manifest_path=str(manifest_path), n=len(index))
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
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Run both towers over the split, batched, without gradients, autocast (bf16) on GPU."""
    from tqdm.auto import tqdm

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    encoder.to(device)
    texts = [clean_report(t) for t in manifest.frame["text"]]
    paths = [str(p) for p in manifest.image_paths()]
    loader = DataLoader(_Images(paths, encoder.transform), batch_size=batch_size, num_workers=num_workers, shuffle=False)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    image_chunks, text_chunks = [], []
    name = f"{manifest.path.name}[{manifest.frame['split'].iloc[0]}]"
    with autocast:
        for images, _ in tqdm(loader, desc=f"images {name}", disable=not progress, leave=False):
            image_chunks.append(encoder.encode_images(images.to(device, non_blocking=True)).float().cpu())
        for start in tqdm(range(0, len(texts), batch_size), desc=f"reports {name}", disable=not progress, leave=False):
            text_chunks.append(encoder.encode_texts(texts[start : start + batch_size]).float().cpu())
    image = torch.cat(image_chunks).numpy().astype(np.float32)  # (N, D)
    text = torch.cat(text_chunks).numpy().astype(np.float32)  # (N, D)
    return image, text, manifest.frame.index.to_numpy().astype(np.int64), texts


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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
    np.save(tmp, out)
    os.replace(tmp, path)
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


def _read(folder: Path, labels: np.ndarray, label_names: list[str], key: str) -> EmbeddingSet:
    """Load a cache entry; labels come from the manifest so any label columns can be asked for."""
    return EmbeddingSet(
        image=np.load(folder / "image.npy"),
        text=np.load(folder / "text.npy"),
        labels=labels,
        label_names=label_names,
        index=np.load(folder / "index.npy"),
        texts=json.loads((folder / "texts.json").read_text()),
        key=key,
    )
