"""Training methods on top of `ContrastiveModule`: eCLIP and its baselines (one concept per file)."""

from medalign.methods.eclip import ECLIPModule, expert_decision

__all__ = ["ECLIPModule", "expert_decision"]
