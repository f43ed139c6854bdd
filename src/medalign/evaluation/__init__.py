"""Evaluation: zero-shot classification (more evaluators join here)."""
