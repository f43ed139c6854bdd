"""Image and heatmap loading, and the joint crop that keeps a heatmap on its image."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image

from medalign.data.decode import decode_jpeg_gray, is_jpeg, png_significant_bits  # noqa: F401 - re-exported

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_image(path: str | Path, bit_depth: int | None = None, min_size: int | None = None) -> torch.Tensor:
    """Read a grayscale radiograph (8/16-bit PNG, JPEG, or DICOM with pydicom) as (1, H, W) in [0, 1].

    16-bit images are divided by ``2**bits - 1`` with `bits` from, in order: the PNG's
    significant-bits (``sBIT``) chunk (the file's own statement, right for mixed datasets),
    `bit_depth`, the container (16). Never by the image's own
    maximum, which would brighten dark images and make brightness differ image to image.

    Args:
        path: image file.
        bit_depth: significant bits of 16-bit files without an ``sBIT`` chunk (e.g. 12 for 12-bit
            detector data stored in 16-bit PNGs); a file's ``sBIT`` wins; None = 16.
        min_size: the training resolution: JPEGs are then decoded at the largest 1/2, 1/4 or 1/8
            reduction still ≥ `min_size` on the short side (`medalign.data.decode`), so the
            result can be smaller than the file; None = full size. Other formats ignore it.
    """
    return decode_image(path, bit_depth, min_size)[0]


def decode_image(
    path: str | Path, bit_depth: int | None = None, min_size: int | None = None
) -> tuple[torch.Tensor, tuple[int, int]]:
    """`load_image` plus the file's full-resolution (H, W): the image may be a DCT-reduced JPEG decode."""
    path = Path(path)
    if path.suffix.lower() == ".dcm":
        image = _load_dicom(path)
        return image, tuple(image.shape[-2:])
    if min_size is not None and is_jpeg(path):
        decoded = decode_jpeg_gray(path, min_size)
        array = decoded.pixels.astype(np.float32) / 255.0
        return torch.from_numpy(array)[None], decoded.source_size
    with Image.open(path) as img:
        img.load()
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):
            bits = (png_significant_bits(path) if img.format == "PNG" else None) or bit_depth or 16  # the file's own word first
            array = np.asarray(img, dtype=np.float32) / float(2**bits - 1)
            np.clip(array, 0.0, 1.0, out=array)
        else:
            array = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(array))[None], array.shape


def _load_dicom(path: Path) -> torch.Tensor:
    try:
        import pydicom
    except ImportError as err:
        raise ImportError(f"reading {path} needs pydicom: pip install 'medalign[dicom]'") from err
    ds = pydicom.dcmread(path)
    array = ds.pixel_array.astype(np.float32)
    array = (array - array.min()) / max(float(array.max() - array.min()), 1e-6)
    if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
        array = 1.0 - array
    return torch.from_numpy(array)[None]


def load_heatmap(path: str | Path) -> torch.Tensor:
    """Read a gaze heatmap (``.npy`` float array or 8/16-bit PNG) as float32 (1, H, W)."""
    path = Path(path)
    if path.suffix == ".npy":
        array = np.load(path, allow_pickle=False).astype(np.float32)
        if array.ndim == 3 and array.shape[0] == 1:
            array = array[0]
        if array.ndim != 2:
            raise ValueError(f"heatmap {path} has shape {array.shape}; expected (H, W)")
        return torch.from_numpy(array)[None]
    return load_image(path)


@dataclass
class PairTransform:
    """Resize/crop an image and its heatmap identically, then normalise the image.

    Training uses a random resized crop (the paper's only augmentation); evaluation resizes
    the short side and centre-crops.

    Attributes:
        image_size: output side length.
        train: random crop when True, centre crop otherwise.
        crop_scale: area fraction range of the random crop.
        crop_ratio: aspect ratio range of the random crop.
        mean: per-channel normalisation mean (3 values; gray is repeated to 3 channels).
        std: per-channel normalisation std.
        channels: 3 (repeat gray, for timm towers) or 1.
    """

    image_size: int
    train: bool = False
    crop_scale: tuple[float, float] = (0.9, 1.0)  # open_clip's default for CLIP training
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    channels: int = 3

    def __call__(
        self,
        image: torch.Tensor,
        heatmap: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        source_size: tuple[int, int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Transform (1, h, w) image and optional (1, H', W') heatmap → (C, S, S), (1, S, S).

        The crop box is drawn in the source's (H, W) pixel frame (`source_size`, default the
        image's own size) and mapped onto each input by its size ratio, so an image decoded at a
        reduced size (`decode_image`) gets the same random crop, and stays aligned with a
        heatmap stored at the source size.
        """
        h, w = image.shape[-2:]
        source_h, source_w = source_size or (h, w)
        if self.train:
            box = random_crop_box(source_h, source_w, self.crop_scale, self.crop_ratio, generator)
        else:
            side = min(source_h, source_w)
            box = ((source_h - side) // 2, (source_w - side) // 2, side, side)
        same_frame = heatmap is not None and heatmap.shape[-2:] == image.shape[-2:]
        stacked = image if heatmap is None or not same_frame else torch.cat([image, heatmap], dim=0)  # (1 or 2, h, w)
        stacked = self._crop(stacked, box, (source_h, source_w))
        out_image = stacked[:1]
        out_heatmap = None
        if heatmap is not None:
            out_heatmap = stacked[1:] if same_frame else self._crop(heatmap, box, (source_h, source_w))
            out_heatmap = out_heatmap.clamp_(0.0, 1.0)
        out_image = out_image.expand(self.channels, -1, -1)
        mean = torch.tensor(self.mean[: self.channels]).view(-1, 1, 1)
        std = torch.tensor(self.std[: self.channels]).view(-1, 1, 1)
        return (out_image - mean) / std, out_heatmap

    def _crop(self, tensor: torch.Tensor, box: tuple[int, int, int, int], source: tuple[int, int]) -> torch.Tensor:
        """Crop `box` (top, left, h, w in the `source` frame) out of `tensor` and resize it to (S, S)."""
        size = [self.image_size, self.image_size]
        h, w = tensor.shape[-2:]
        if (h, w) != tuple(source):
            box = scale_box(box, source, (h, w))
        return TF.resized_crop(tensor, *box, size, antialias=True)


def scale_box(box: tuple[int, int, int, int], source: tuple[int, int], target: tuple[int, int]) -> tuple[int, int, int, int]:
    """Map a (top, left, h, w) box from a `source` (H, W) pixel frame onto a `target` (h, w) frame of the same picture."""
    fy, fx = target[0] / source[0], target[1] / source[1]
    top, left = min(int(box[0] * fy + 0.5), target[0] - 1), min(int(box[1] * fx + 0.5), target[1] - 1)
    bottom = min(max(int((box[0] + box[2]) * fy + 0.5), top + 1), target[0])
    right = min(max(int((box[1] + box[3]) * fx + 0.5), left + 1), target[1])
    return top, left, bottom - top, right - left


def random_crop_box(
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator | None = None,
) -> tuple[int, int, int, int]:
    """RandomResizedCrop's box sampling with an explicit generator: (top, left, h, w)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        u = torch.rand(4, generator=generator).tolist()
        target_area = area * (scale[0] + (scale[1] - scale[0]) * u[0])
        aspect = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * u[1])
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(u[2] * (height - h + 1))
            left = int(u[3] * (width - w + 1))
            return top, left, h, w
    side = min(height, width)  # fallback: centre crop
    return (height - side) // 2, (width - side) // 2, side, side
