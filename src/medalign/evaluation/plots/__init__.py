"""Plots of evaluation results and embedding geometry (matplotlib, the ``plots`` extra)."""
