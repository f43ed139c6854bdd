"""Saliency panels: per row, the image, the expert heatmap, the model saliency and an overlay."""

from __future__ import annotations

from pathlib import Path

import torch

from medalign.evaluation.plots.style import new_figure, save_figure


def _gray(image: torch.Tensor) -> torch.Tensor:
    """A normalised (C, S, S) image back to a [0, 1] (S, S) gray picture (per-image min–max)."""
    g = image.float().mean(0)
    return (g - g.min()) / (g.max() - g.min()).clamp_min(1e-6)


def plot_panels(rows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], path: str | Path, title: str = "") -> Path:
    """One line per (image (C, S, S), heatmap (S, S), saliency (S, S)) row; returns the PNG path.

    Heatmap and saliency share the [0, 1] scale of the colour bars under their columns; the overlay
    uses the saliency colours.
    """
    fig = new_figure((9.6, 2.4 * len(rows) + 1.0))
    axes = fig.subplots(len(rows), 4, squeeze=False)
    images = {}
    for r, (image, heat, sal) in enumerate(rows):
        gray = _gray(image).numpy()
        panels = [(gray, "gray", "image"), (heat.numpy(), "magma", "expert gaze"), (sal.numpy(), "jet", "model saliency")]
        for c, (data, cmap, name) in enumerate(panels):
            images[c] = axes[r, c].imshow(data, cmap=cmap, vmin=0, vmax=1)
            axes[r, c].set_title(name if r == 0 else "", fontsize=9)
        axes[r, 3].imshow(gray, cmap="gray")
        axes[r, 3].imshow(sal.numpy(), cmap="jet", alpha=0.4, vmin=0, vmax=1)
        axes[r, 3].contour(heat.numpy(), levels=[0.5], colors="white", linewidths=0.8)
        axes[r, 3].set_title("overlay (white: gaze ≥ 0.5)" if r == 0 else "", fontsize=9)
        for ax in axes[r]:
            ax.set_axis_off()
    for c, label in ((1, "expert gaze (normalised)"), (2, "model saliency (normalised)")):
        bar = fig.colorbar(images[c], ax=axes[:, c] if c == 1 else axes[:, 2:], location="bottom", shrink=0.8,
                           aspect=30, pad=0.02)
        bar.set_label(label, fontsize=8)
        bar.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
