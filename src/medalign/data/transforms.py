"""Image and heatmap loading, and the joint crop that keeps a heatmap on its image.

The evaluation transform is open_clip's eval preprocess, op for op (`EvalPreprocess`): the
8-bit grayscale picture as a PIL image → resize the short side to S (PIL bilinear, which
antialiases) → centre crop S × S → ``to_tensor`` → normalise. `EvalPreprocess.open_clip_cfg`
is the ``preprocess_cfg`` an export writes, so ``open_clip.create_model_and_transforms`` on the
exported folder preprocesses an image *file* as medalign does (docs/export.md says where not).
Training keeps its random resized crop on float images (`PairTransform` with ``train=True``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision.transforms.functional as TV1
import torchvision.transforms.v2.functional as TF
from PIL import Image

from medalign.data.decode import decode_jpeg_gray, is_jpeg, png_significant_bits  # noqa: F401 - re-exported

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EVAL_INTERPOLATION = "bilinear"  # open_clip preprocess_cfg "interpolation"
EVAL_RESIZE_MODE = "shortest"  # open_clip preprocess_cfg "resize_mode": short side → S, then centre crop

log = logging.getLogger(__name__)
_warned_quantised = False


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


def to_uint8(image: torch.Tensor) -> tuple[np.ndarray, bool]:
    """A (1, H, W) image in [0, 1] → (H, W) uint8, and whether that lost information.

    Exact (False) for 8-bit sources, whose values are k/255; 16-bit PNGs and DICOM are rounded
    to the nearest of 256 levels (True), as an 8-bit file of the same picture would store them.
    """
    if image.ndim != 3 or image.shape[0] != 1:
        raise ValueError(f"expected a (1, H, W) grayscale image, got shape {tuple(image.shape)}")
    levels = (image[0].float() * 255.0).round_().clamp_(0, 255)
    lossy = not torch.equal(levels / 255.0, image[0].float())
    return levels.to(torch.uint8).numpy(), lossy


def open_clip_image(path: str | Path, bit_depth: int | None = None) -> Image.Image:
    """The 8-bit grayscale PIL image medalign evaluates for `path`: give it to open_clip's ``preprocess``.

    For 8-bit PNG / JPEG files it is the file's luma (``Image.open(path).convert("L")``); 16-bit
    PNGs are scaled by their bit depth (`load_image`) and DICOM by its range, then rounded to 8
    bits — what PIL cannot do on its own (its RGB conversion clips 16-bit values). Then
    ``preprocess(open_clip_image(path))`` equals medalign's evaluation input.
    """
    pixels, _ = to_uint8(load_image(path, bit_depth))
    return Image.fromarray(pixels, mode="L")


@dataclass(frozen=True)
class EvalPreprocess:
    """The evaluation preprocessing, defined once for medalign and for the exported open_clip model.

    open_clip 3.x ``image_transform(is_train=False, resize_mode="shortest")`` on a PIL image:
    ``Resize(S)`` (short side to S, long side ``int(S · long / short)``, PIL bilinear) →
    ``CenterCrop(S)`` (top ``round((h − S) / 2)``) → ``convert("RGB")`` → ``to_tensor`` → normalise.
    medalign runs the same torchvision calls on the 8-bit gray picture, so the output is
    bit-identical for 8-bit grayscale files (and gray stored as RGB); the gray channel is
    repeated as RGB conversion does.

    Attributes:
        image_size: output side length S.
        mean: per-channel normalisation mean (3 values; gray is repeated to 3 channels).
        std: per-channel normalisation std.
    """

    image_size: int
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def open_clip_cfg(self) -> dict[str, Any]:
        """open_clip's ``preprocess_cfg`` for this transform (written into an exported folder)."""
        return {"size": int(self.image_size), "mean": [float(m) for m in self.mean], "std": [float(s) for s in self.std],
                "interpolation": EVAL_INTERPOLATION, "resize_mode": EVAL_RESIZE_MODE}

    def geometry(self, picture: Image.Image) -> tuple[Image.Image, tuple[int, int, int, int]]:
        """The resized picture and the crop box (top, left, S, S) in its frame."""
        resized = TV1.resize(picture, self.image_size, interpolation=TV1.InterpolationMode.BILINEAR)
        width, height = resized.size
        top, left = int(round((height - self.image_size) / 2.0)), int(round((width - self.image_size) / 2.0))
        return resized, (top, left, self.image_size, self.image_size)

    def gray(self, image: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int], tuple[int, int, int, int]]:
        """(1, h, w) in [0, 1] → the cropped (1, S, S) in [0, 1] (k/255 values), the resized (H', W') and the box."""
        global _warned_quantised
        pixels, lossy = to_uint8(image)
        if lossy and not _warned_quantised:
            _warned_quantised = True
            log.warning("evaluation rounds images with more than 8 bits (16-bit PNG, DICOM) to 8 bits, as the exported "
                        "open_clip model's preprocess needs (give it medalign.data.transforms.open_clip_image(path)); "
                        "see docs/export.md")
        resized, box = self.geometry(Image.fromarray(pixels, mode="L"))
        top, left, size, _ = box
        cropped = TV1.center_crop(resized, [size, size])  # PIL crop: pads with 0 where the picture is smaller
        tensor = TV1.to_tensor(cropped)  # (1, S, S) = uint8 / 255, as open_clip's to_tensor
        return tensor, (resized.size[1], resized.size[0]), box


@dataclass
class PairTransform:
    """Resize/crop an image and its heatmap identically, then normalise the image.

    Training uses a random resized crop (the paper's only augmentation) on the float image;
    evaluation is `EvalPreprocess` (open_clip's eval preprocess on the 8-bit picture), its
    heatmap resized (float, antialiased bilinear) to the same frame and cropped with the same box.

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
        if not self.train:
            return self._eval(image, heatmap)
        h, w = image.shape[-2:]
        source_h, source_w = source_size or (h, w)
        box = random_crop_box(source_h, source_w, self.crop_scale, self.crop_ratio, generator)
        same_frame = heatmap is not None and heatmap.shape[-2:] == image.shape[-2:]
        stacked = image if heatmap is None or not same_frame else torch.cat([image, heatmap], dim=0)  # (1 or 2, h, w)
        stacked = self._crop(stacked, box, (source_h, source_w))
        out_image = stacked[:1]
        out_heatmap = None
        if heatmap is not None:
            out_heatmap = stacked[1:] if same_frame else self._crop(heatmap, box, (source_h, source_w))
            out_heatmap = out_heatmap.clamp_(0.0, 1.0)
        return self._normalise(out_image), out_heatmap

    @property
    def eval_preprocess(self) -> EvalPreprocess:
        """The evaluation preprocessing (shared with the exported open_clip ``preprocess_cfg``)."""
        return EvalPreprocess(self.image_size, tuple(self.mean), tuple(self.std))

    def _eval(self, image: torch.Tensor, heatmap: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`EvalPreprocess` on the image; the heatmap resized to the image's resized frame and cropped alike.

        A reduced-size JPEG decode is resized from its own pixels (close to, not equal to, the full decode).
        """
        gray, (height, width), (top, left, size, _) = self.eval_preprocess.gray(image)
        out_heatmap = None
        if heatmap is not None:
            resized = TF.resize(heatmap.float(), [height, width], antialias=True)
            out_heatmap = TF.crop(resized, top, left, size, size).clamp_(0.0, 1.0)  # zero-padded like the image
        return self._normalise(gray), out_heatmap

    def _normalise(self, image: torch.Tensor) -> torch.Tensor:
        """(1, S, S) → (channels, S, S), normalised as torchvision's ``Normalize`` (sub, then div)."""
        image = image.expand(self.channels, -1, -1)
        mean = torch.tensor(self.mean[: self.channels]).view(-1, 1, 1)
        std = torch.tensor(self.std[: self.channels]).view(-1, 1, 1)
        return (image - mean) / std

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
