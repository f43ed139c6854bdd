"""Export trained models in formats other tools load (open_clip folders, ready for the Hugging Face hub)."""

from medalign.export.checkpoint import export_checkpoint
from medalign.export.load import load_open_clip
from medalign.export.open_clip_model import OpenClipParts, open_clip_parts
from medalign.export.towers import ExportError

__all__ = ["ExportError", "OpenClipParts", "export_checkpoint", "load_open_clip", "open_clip_parts"]
