"""The resize cache: an image's short side → `short_side` pixels, its heatmaps resized with it.

One rule for ``medalign prepare --resize N`` and ``medalign resize MANIFEST --size N``:

* the short side becomes `short_side` (never upscaled), aspect ratio kept (long side rounded);
* 8-bit gray/RGB stays 8-bit (PNG, or JPEG with ``fmt="jpeg"``); 16-bit PNGs stay 16-bit PNGs
  with their ``sBIT`` chunk copied, so `load_image` divides by the same ``2**bits - 1`` and a
  12-bit image keeps its brightness; DICOM becomes a 16-bit PNG of `load_image`'s [0, 1] values;
* JPEGs are decoded at the largest DCT reduction still ≥ 2 × `short_side` (`medalign.data.decode`)
  before the antialiased resample, which keeps the cache fast to build at full quality;
* a heatmap is resampled onto the resized image's pixel grid (Pillow maps both by the same
  corner-to-corner scale) and peak-normalised again (`medalign.data.heatmaps.peak_normalise`).

Torch-free except for DICOM (pydicom via `load_image`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from medalign.data.decode import jpeg_scale, png_significant_bits
from medalign.data.heatmaps import peak_normalise
from medalign.run_folder import atomic_path

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")


def resized_size(size: tuple[int, int], short_side: int) -> tuple[int, int]:
    """(H, W) → (h, w) with ``min(h, w) == short_side`` and the aspect ratio kept; unchanged if already ≤ `short_side`."""
    if short_side < 1:
        raise ValueError(f"the resize short side must be ≥ 1, got {short_side}")
    height, width = size
    scale = short_side / min(height, width)
    if scale >= 1:
        return height, width
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_image(source: str | Path, target: str | Path, short_side: int, fmt: str = "png", quality: int = 95) -> tuple[tuple[int, int], tuple[int, int]]:
    """Write `source` resized to `target` (atomically); return its (H, W) before and (h, w) after.

    Args:
        source: image file (JPEG, 8/16-bit PNG, any Pillow format, or DICOM).
        target: output file; its parent folders are created.
        short_side: the short side after resizing (never upscaled).
        fmt: ``png`` (lossless) or ``jpeg`` (8-bit images only; 16-bit ones stay PNG: pass a
            ``.png`` target for them).
        quality: JPEG quality.
    """
    source, target = Path(source), Path(target)
    sbit = None
    if source.suffix.lower() == ".dcm":
        from medalign.data.transforms import load_image

        unit = load_image(source)[0].numpy()
        img = Image.fromarray(np.round(unit * 65535).astype(np.uint16))
        original = unit.shape
    else:
        img = Image.open(source)
        original = (img.height, img.width)
        if img.format == "JPEG" and img.mode in ("L", "RGB"):  # decode at a DCT reduction ≥ 2 × short side
            scale = jpeg_scale(original, 2 * short_side)
            if scale > 1:
                img.draft(img.mode, (img.width // scale, img.height // scale))
        img.load()
        if img.mode in SIXTEEN_BIT_MODES:
            sbit = png_significant_bits(source) if img.format == "PNG" else None
        elif img.mode not in ("L", "RGB"):
            img = img.convert("RGB" if img.mode in ("P", "RGBA", "CMYK", "YCbCr", "LAB", "HSV") else "L")
    height, width = resized_size(original, short_side)
    if img.mode in SIXTEEN_BIT_MODES:
        array = np.asarray(img, dtype=np.float32)
        if (height, width) != array.shape:
            array = np.asarray(Image.fromarray(array).resize((width, height), Image.BICUBIC))
        img = Image.fromarray(np.clip(np.round(array), 0, 65535).astype(np.uint16))
    elif (height, width) != (img.height, img.width):
        img = img.resize((width, height), Image.BICUBIC)
    _save(img, target, fmt, quality, sbit)
    return original, (height, width)


def _save(img: Image.Image, target: Path, fmt: str, quality: int, sbit: int | None) -> None:
    if fmt not in ("png", "jpeg"):
        raise ValueError(f"resize format must be 'png' or 'jpeg', got {fmt!r}")
    with atomic_path(target) as tmp:
        if fmt == "jpeg" and img.mode in ("L", "RGB"):
            img.save(tmp, format="JPEG", quality=quality)
        else:
            info = PngImagePlugin.PngInfo()
            if sbit:
                info.add(b"sBIT", bytes([sbit]))  # written before IDAT: png_significant_bits reads it back
            img.save(tmp, format="PNG", pnginfo=info)


def resize_heatmap(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resample a (H, W) heatmap onto an (h, w) grid of the same picture, then peak-normalise it (float32)."""
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.ndim == 3 and heatmap.shape[0] == 1:
        heatmap = heatmap[0]
    if heatmap.shape != tuple(size):
        # bilinear (a triangle filter widened for downsampling): non-negative, no ringing around the peak
        heatmap = np.asarray(Image.fromarray(heatmap).resize((size[1], size[0]), Image.BILINEAR))
    return peak_normalise(heatmap)


def image_size(path: str | Path) -> tuple[int, int]:
    """(H, W) of an image file from its header (DICOM: Rows, Columns)."""
    path = Path(path)
    if path.suffix.lower() == ".dcm":
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True)
        return int(ds.Rows), int(ds.Columns)
    with Image.open(path) as img:
        return img.height, img.width


__all__ = ["image_size", "resize_heatmap", "resize_image", "resized_size"]
