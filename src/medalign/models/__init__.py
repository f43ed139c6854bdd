"""Models: image and text towers, the dual encoder, presets and weight loading."""

from medalign.models.dual_encoder import DualEncoder, DualEncoderOutput
from medalign.models.factory import create_dual_encoder
from medalign.models.image import ImageEncoder
from medalign.models.presets import PRESETS, ModelPreset, get_preset
from medalign.models.text import TextEncoder
from medalign.models.weights import load_weights

__all__ = [
    "PRESETS",
    "DualEncoder",
    "DualEncoderOutput",
    "ImageEncoder",
    "ModelPreset",
    "TextEncoder",
    "create_dual_encoder",
    "get_preset",
    "load_weights",
]
