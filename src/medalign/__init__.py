"""medalign: medical image-text contrastive pretraining and embedding geometry."""

__version__ = "0.1.0"
