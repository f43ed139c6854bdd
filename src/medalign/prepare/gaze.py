"""Eye-gaze fixations → attention heatmaps (EGD-CXR, REFLACX; docs/datasets.md, "Eye gaze → heatmaps").

Each fixation k at image position c_k = (x_k, y_k) with duration d_k contributes a Gaussian

    H(x, y) = Σ_k d_k · exp(−((x − x_k)² + (y − y_k)²) / (2σ²)),

and the sum is divided by its maximum so the heatmap lies in [0, 1]. σ defaults to 1/20 of the
image's longer side (≈ one degree of visual angle on a reading-room display). Pixel (row i,
column j) has coordinates (x = j, y = i): integer coordinates are pixel centres.
"""

from __future__ import annotations

import numpy as np

from medalign.data.heatmaps import peak_normalise

DEFAULT_SIGMA_FRACTION = 1 / 20


def fixations_to_heatmap(
    x: np.ndarray,
    y: np.ndarray,
    duration: np.ndarray,
    shape: tuple[int, int],
    source_shape: tuple[int, int] | None = None,
    sigma: float | None = None,
    sigma_fraction: float = DEFAULT_SIGMA_FRACTION,
) -> np.ndarray:
    """Render fixations as a duration-weighted sum of Gaussians, normalised to [0, 1].

    Args:
        x: fixation columns (K,), in the pixel frame of `source_shape`.
        y: fixation rows (K,), same frame.
        duration: fixation durations (K,) (any unit; only ratios matter); non-positive ones are ignored.
        shape: output (height, width).
        source_shape: (height, width) of the frame the coordinates are in (default: `shape`);
            coordinates are rescaled centre-to-centre to `shape`.
        sigma: Gaussian standard deviation in output pixels; overrides `sigma_fraction`.
        sigma_fraction: σ as a fraction of the output's longer side.

    Returns:
        float32 (height, width) in [0, 1]; all zeros when no fixation has positive duration.

    Raises:
        ValueError: mismatched lengths, non-finite coordinates or a non-positive σ.
    """
    x, y, duration = (np.asarray(a, dtype=np.float64).ravel() for a in (x, y, duration))
    if not len(x) == len(y) == len(duration):
        raise ValueError(f"x, y and duration must have equal lengths, got {len(x)}, {len(y)}, {len(duration)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all() and np.isfinite(duration).all()):
        raise ValueError("fixation coordinates and durations must be finite")
    height, width = shape
    if source_shape is not None and tuple(source_shape) != (height, width):
        x = (x + 0.5) * width / source_shape[1] - 0.5
        y = (y + 0.5) * height / source_shape[0] - 0.5
    sigma = sigma if sigma is not None else sigma_fraction * max(height, width)
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    keep = duration > 0
    x, y, duration = x[keep], y[keep], duration[keep]
    if len(x) == 0:
        return np.zeros((height, width), dtype=np.float32)
    # The 2-D Gaussian is separable: H = G_yᵀ · diag(d) · G_x, a (H, K) @ (K, W) product.
    g_x = np.exp(-((np.arange(width)[None, :] - x[:, None]) ** 2) / (2 * sigma**2))  # (K, W)
    g_y = np.exp(-((np.arange(height)[None, :] - y[:, None]) ** 2) / (2 * sigma**2))  # (K, H)
    heatmap = (g_y.T * duration[None, :]) @ g_x  # (H, W)
    return peak_normalise(heatmap)  # all zeros when every fixation is far outside the image


def combine_readers(heatmaps: list[np.ndarray]) -> np.ndarray:
    """Mean of several readers' heatmaps of one image, renormalised to [0, 1]."""
    if not heatmaps:
        raise ValueError("no heatmaps to combine")
    return peak_normalise(np.mean(np.stack(heatmaps), axis=0))
