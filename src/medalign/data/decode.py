"""Reduced-size JPEG decoding: let libjpeg-turbo's DCT scaling do most of the resize.

A MIMIC-CXR-JPG image is about 2,500 × 3,000 pixels and is resized to 224–512 pixels right after
decoding. libjpeg(-turbo) can decode at 1/2, 1/4 or 1/8 of the size by running a smaller inverse
DCT per 8 × 8 block (``scale_num/scale_denom``; see libjpeg's ``libjpeg.txt``, "scaled
decoding"): output pixel ``j`` covers source pixels ``[s·j, s·j + s)``, so the reduced image is
the source at exactly ``1/s`` of its resolution, and the decode costs several times less.

`jpeg_scale` picks the largest ``s ∈ {8, 4, 2, 1}`` whose full blocks still cover `min_size`
on the short side (``short // s ≥ min_size``, Pillow's ``draft`` rule), so the training resize
that follows always *down*-samples. `decode_jpeg_gray` decodes with ``simplejpeg`` when it is
installed (``pip install simplejpeg``; the same libjpeg-turbo without Pillow's file machinery) and
with Pillow's bundled libjpeg-turbo (``Image.draft``) otherwise: both produce the same reduced
image. Torch-free (numpy + Pillow) so ``medalign resize`` can use it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SCALES = (8, 4, 2, 1)  # the power-of-two reductions libjpeg offers (1/8 … 1/1)
JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass(frozen=True)
class Decoded:
    """A decoded grayscale image and the size of the file it came from.

    Attributes:
        pixels: (h, w) uint8 (8-bit sources) — at ``1/scale`` of the source resolution.
        source_size: (H, W) of the full-resolution image in the file.
        scale: the reduction ``s`` (1 = full size); ``h = ceil(H / s)``.
    """

    pixels: np.ndarray
    source_size: tuple[int, int]
    scale: int


def jpeg_scale(source_size: tuple[int, int], min_size: int | None) -> int:
    """The largest reduction ``s ∈ {8, 4, 2, 1}`` with ``min(H, W) // s ≥ min_size`` (1 when `min_size` is None)."""
    if not min_size:
        return 1
    short = min(source_size)
    return next(s for s in SCALES if short // s >= min_size or s == 1)


def is_jpeg(path: str | Path) -> bool:
    """Whether the file starts with the JPEG SOI marker (any extension)."""
    with open(path, "rb") as f:
        return f.read(3) == JPEG_MAGIC


def decode_jpeg_gray(path: str | Path, min_size: int | None = None, backend: str = "auto") -> Decoded:
    """Decode a JPEG as 8-bit gray, reduced by DCT scaling to the smallest size ≥ `min_size` on the short side.

    Args:
        path: a JPEG file (baseline or progressive; gray, YCbCr or CMYK).
        min_size: the training resolution; None decodes at full size.
        backend: ``simplejpeg``, ``pil``, or ``auto`` (simplejpeg if importable, else Pillow).

    Raises:
        ImportError: ``backend="simplejpeg"`` without simplejpeg installed.
    """
    if backend not in ("auto", "pil", "simplejpeg"):
        raise ValueError(f"backend must be 'auto', 'pil' or 'simplejpeg', got {backend!r}")
    if backend != "pil":
        try:
            import simplejpeg
        except ImportError as err:
            if backend == "simplejpeg":
                raise ImportError("decode backend 'simplejpeg' needs it installed: pip install simplejpeg") from err
        else:
            return _simplejpeg(simplejpeg, Path(path), min_size)
    return _pil(Path(path), min_size)


def _pil(path: Path, min_size: int | None) -> Decoded:
    with Image.open(path) as img:
        width, height = img.size
        scale = jpeg_scale((height, width), min_size)
        if scale > 1 or img.mode == "RGB":
            # Pillow's draft: scale = min(W // w, H // h) → pass (W // s, H // s) to get exactly s;
            # mode "L" decodes luma only (no colour conversion) for YCbCr files.
            img.draft("L", (width // scale, height // scale))
        img.load()
        gray = img if img.mode == "L" else img.convert("L")
        pixels = np.asarray(gray)
    return Decoded(pixels, (height, width), scale)


def _simplejpeg(simplejpeg, path: Path, min_size: int | None) -> Decoded:
    data = path.read_bytes()
    height, width, _, _ = simplejpeg.decode_jpeg_header(data)
    scale = jpeg_scale((height, width), min_size)
    # simplejpeg picks the smallest libjpeg-turbo factor M/8 whose floor(size·M/8) reaches these: exactly 1/scale.
    pixels = simplejpeg.decode_jpeg(data, colorspace="GRAY", min_height=height // scale, min_width=width // scale)[..., 0]
    return Decoded(np.ascontiguousarray(pixels), (height, width), scale)


def png_significant_bits(path: str | Path) -> int | None:
    """The first value of a PNG's ``sBIT`` chunk (significant bits per sample), or None without one."""
    with open(path, "rb") as f:
        if f.read(8) != b"\x89PNG\r\n\x1a\n":
            return None
        while header := f.read(8):
            if len(header) < 8:
                return None
            length, kind = struct.unpack(">I4s", header)
            if kind == b"sBIT":
                data = f.read(length)
                return int(data[0]) if data else None
            if kind in (b"IDAT", b"IEND"):  # sBIT must come before the image data
                return None
            f.seek(length + 4, 1)  # chunk data and CRC
    return None
