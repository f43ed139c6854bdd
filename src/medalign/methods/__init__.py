"""Pure pieces of the training methods (no Lightning): eCLIP's random-heatmap control and duplicate mask."""

from medalign.methods.duplicate_mask import same_pair_mask
from medalign.methods.random_heatmaps import random_smooth_heatmaps

__all__ = ["random_smooth_heatmaps", "same_pair_mask"]
