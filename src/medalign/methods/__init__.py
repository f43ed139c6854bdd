"""Training methods, one file each (no Lightning): an `Objective` per method plus eCLIP's pure pieces.

Objectives are chosen by ``class_path`` under ``model.init_args.objectives`` (docs/methods.md):
`clip.CLIP`, `siglip.SigLIP`, `gap_closing.GapClosing`, `dacl.DACL`, `m3mix.M3Mix`, `slip.SLIP`,
`mlm.MLM`, `filip.FILIP`, `freeze.Freeze`; `base` defines the interface, `legacy` maps old flat keys.
"""

from medalign.methods.duplicate_mask import same_pair_mask
from medalign.methods.random_heatmaps import random_smooth_heatmaps

__all__ = ["random_smooth_heatmaps", "same_pair_mask"]
