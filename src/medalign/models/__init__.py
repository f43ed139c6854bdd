"""Models: image and text towers, the dual encoder, presets and weight loading."""

from medalign.models.dual_encoder import DualEncoder, DualEncoderOutput
from medalign.models.factory import create_dual_encoder
from medalign.models.heatmap_processor import CNNProcessor, HeatmapProcessor, MaskProcessor, create_heatmap_processor
from medalign.models.image import ImageEncoder
from medalign.models.presets import PRESETS, ModelPreset, get_preset
from medalign.models.spec import ModelSpec
from medalign.models.text import TextEncoder
from medalign.models.weights import load_weights

__all__ = [
    "PRESETS",
    "CNNProcessor",
    "DualEncoder",
    "DualEncoderOutput",
    "HeatmapProcessor",
    "ImageEncoder",
    "MaskProcessor",
    "ModelPreset",
    "ModelSpec",
    "TextEncoder",
    "create_dual_encoder",
    "create_heatmap_processor",
    "get_preset",
    "load_weights",
]
