"""medalign: medical image-text contrastive pretraining and embedding geometry.

The library API (no Lightning): losses, geometry and retrieval metrics, the dual encoder and its
`ModelSpec`, the manifest and dataset, label policies, the synthetic set and the frozen-encoder
evaluation helpers (docs/api.md)::

    import medalign
    model = medalign.create_dual_encoder(preset="tiny")
    loss = medalign.clip_loss(image_emb, text_emb, logit_scale)

Each name is imported on first use (PEP 562), so ``import medalign`` (and ``medalign --help``) does
not load torch. The training layer (LightningModules, datamodule, callbacks, CLI) lives in
`medalign.training`; see docs/architecture.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medalign._lazy import lazy_exports

__version__ = "0.1.0"

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from medalign.curriculum import expert_probability
    from medalign.data.dataset import Collator, ImageTextDataset
    from medalign.data.labels import LabelPolicy
    from medalign.data.manifest import Manifest, ManifestError, read_manifest
    from medalign.data.prompts import load_prompts
    from medalign.data.tokenizer import load_tokenizer
    from medalign.evaluation.embeddings import EmbeddingSet, get_embeddings
    from medalign.evaluation.encoders import MedAlignEncoder, OpenClipEncoder, load_checkpoint_encoder
    from medalign.evaluation.tasks.zero_shot import zero_shot_classify
    from medalign.losses import clip_loss, contrastive_loss
    from medalign.metrics.clustering import clustering_scores
    from medalign.metrics.retrieval import retrieval_metrics
    from medalign.metrics.geometry import (
        alignment,
        gap_vector,
        geometry_summary,
        lambda_shift,
        mean_resultant_length,
        modality_gap,
        uniformity,
    )
    from medalign.models.dual_encoder import DualEncoder, DualEncoderOutput
    from medalign.models.factory import create_dual_encoder
    from medalign.models.presets import ModelPreset, get_preset
    from medalign.models.spec import ModelSpec
    from medalign.models.weights import load_weights
    from medalign.paths import resolve_config
    from medalign.synthetic.generate import SyntheticConfig, generate_synthetic

# public name → the module that defines it
_HOME: dict[str, str] = {
    # losses (CLIP, Radford et al. 2021; eCLIP, Kumar et al. 2024)
    "clip_loss": "medalign.losses",
    "contrastive_loss": "medalign.losses",
    "expert_probability": "medalign.curriculum",
    # embedding geometry (docs/geometry.md)
    "alignment": "medalign.metrics.geometry",
    "uniformity": "medalign.metrics.geometry",
    "modality_gap": "medalign.metrics.geometry",
    "gap_vector": "medalign.metrics.geometry",
    "mean_resultant_length": "medalign.metrics.geometry",
    "lambda_shift": "medalign.metrics.geometry",
    "geometry_summary": "medalign.metrics.geometry",
    "clustering_scores": "medalign.metrics.clustering",
    "retrieval_metrics": "medalign.metrics.retrieval",
    # models
    "ModelSpec": "medalign.models.spec",
    "create_dual_encoder": "medalign.models.factory",
    "DualEncoder": "medalign.models.dual_encoder",
    "DualEncoderOutput": "medalign.models.dual_encoder",
    "ModelPreset": "medalign.models.presets",
    "get_preset": "medalign.models.presets",
    "load_weights": "medalign.models.weights",
    # data
    "read_manifest": "medalign.data.manifest",
    "Manifest": "medalign.data.manifest",
    "ManifestError": "medalign.data.manifest",
    "ImageTextDataset": "medalign.data.dataset",
    "Collator": "medalign.data.dataset",
    "load_prompts": "medalign.data.prompts",
    "load_tokenizer": "medalign.data.tokenizer",
    "LabelPolicy": "medalign.data.labels",
    "generate_synthetic": "medalign.synthetic.generate",
    "SyntheticConfig": "medalign.synthetic.generate",
    "resolve_config": "medalign.paths",
    # frozen-encoder evaluation
    "load_checkpoint_encoder": "medalign.evaluation.encoders",
    "zero_shot_classify": "medalign.evaluation.tasks.zero_shot",
    "MedAlignEncoder": "medalign.evaluation.encoders",
    "OpenClipEncoder": "medalign.evaluation.encoders",
    "get_embeddings": "medalign.evaluation.embeddings",
    "EmbeddingSet": "medalign.evaluation.embeddings",
}

__all__ = list(_HOME)


__getattr__, __dir__ = lazy_exports(__name__, _HOME)
