"""The embedded synthetic chest-X-ray dataset: findings, rendered images, templated reports, gaze."""

from medalign.synthetic.generate import SyntheticConfig, ensure_synthetic, generate_synthetic

__all__ = ["SyntheticConfig", "ensure_synthetic", "generate_synthetic"]
