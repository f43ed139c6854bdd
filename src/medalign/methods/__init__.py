"""Pure pieces of the training methods (no Lightning): eCLIP's random-heatmap control and expert loss."""

from medalign.methods.expert_loss import duplicate_masked_contrastive_loss
from medalign.methods.random_heatmaps import random_smooth_heatmaps

__all__ = ["duplicate_masked_contrastive_loss", "random_smooth_heatmaps"]
