"""What each modality of a manifest carries about the gaze heatmaps and the labels (`medalign testbed-info`).

On the rows with a heatmap, pooled over `folds` cross-validation folds (so every number is out
of sample):

- **heatmap variance explained** (R²) by a ridge regression from the report's bag of words
  (binary unigrams + bigrams), from the image (its pixels on a `grid`² grid), and from both;
  ``noise`` = 1 − R²(both), what neither predicts. R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ), where ȳ is
  the mean heatmap of the fold's training rows, over all `grid`² cells of all held-out rows.
- **label AUC** (macro over labels with both classes among these rows) of a logistic regression
  from the report, from the heatmap, and from both.
- **retrieval ceiling**: the share of test rows whose report string occurs once in the test
  split (a report shared by k images can be retrieved for at most one of them at rank 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medalign.data.manifest import MANIFEST_COLUMNS

ALPHAS = tuple(np.logspace(-2, 5, 15))  # ridge penalties searched inside each training fold


@dataclass
class TestbedInfo:
    __test__ = False

    rows: int  # rows with a heatmap (all splits)
    r2_report: float  # out-of-sample share of heatmap variance explained by the report
    r2_image: float  # ... by the image
    r2_both: float  # ... by report and image together
    noise: float  # 1 - r2_both
    auc_report: float  # macro label AUC from the report
    auc_heatmap: float  # ... from the heatmap
    auc_both: float  # ... from both
    retrieval_ceiling: float  # share of test rows whose report is unique in the test split
    test_rows: int


def text_features(texts: list[str]) -> np.ndarray:
    """(N, V) binary bag of unigrams and bigrams (words seen in ≥ 2 reports)."""
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(binary=True, ngram_range=(1, 2), min_df=min(2, len(texts)))
    return vectorizer.fit_transform(texts).toarray().astype(np.float64)


def load_grid(paths: list[Path], grid: int) -> np.ndarray:
    """(N, grid²) images (grayscale, /255) or ``.npy`` heatmaps resized to `grid`² (bilinear), flattened."""
    from PIL import Image

    out = np.empty((len(paths), grid * grid))
    for k, path in enumerate(paths):
        if path.suffix == ".npy":
            array = np.load(path).astype(np.float32)
            if array.ndim != 2:
                raise ValueError(f"{path}: a heatmap must be 2-D, got shape {array.shape}")
            image = Image.fromarray(array, mode="F")
        else:
            image = Image.open(path).convert("F")
            image = image.point(lambda value: value / 255.0)
        out[k] = np.asarray(image.resize((grid, grid), Image.BILINEAR), dtype=np.float64).ravel()
    return out


def cross_validated_r2(features: np.ndarray, targets: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    """Out-of-sample R² of a ridge regression `features` (N, F) → `targets` (N, T), pooled over folds."""
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold

    if len(features) != len(targets):
        raise ValueError(f"features ({features.shape}) and targets ({targets.shape}) must have the same rows")
    sse = sst = 0.0
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(features):
        mean, scale = features[train].mean(0), features[train].std(0) + 1e-8
        model = RidgeCV(alphas=ALPHAS).fit((features[train] - mean) / scale, targets[train])
        predicted = model.predict((features[test] - mean) / scale)
        sse += float(((targets[test] - predicted) ** 2).sum())
        sst += float(((targets[test] - targets[train].mean(0)) ** 2).sum())
    return 1.0 - sse / sst


def cross_validated_auc(features: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    """Macro AUC of out-of-fold logistic regressions `features` (N, F) → each column of `labels` (N, C) in {0, 1}."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    from medalign.metrics.classification import binary_auc

    aucs = []
    for c in range(labels.shape[1]):
        y = labels[:, c]
        if y.min() == y.max() or min(int(y.sum()), int((1 - y).sum())) < folds:
            continue
        scores = np.empty(len(y))
        for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(features, y):
            mean, scale = features[train].mean(0), features[train].std(0) + 1e-8
            model = LogisticRegression(C=0.1, max_iter=2000).fit((features[train] - mean) / scale, y[train])
            scores[test] = model.decision_function((features[test] - mean) / scale)
        aucs.append(binary_auc(y, scores))
    return float(np.mean(aucs)) if aucs else float("nan")


def retrieval_ceiling(texts: list[str]) -> float:
    """Share of `texts` that occur exactly once (the test split's reports)."""
    if not texts:
        return float("nan")
    counts = pd.Series(texts).value_counts()
    return float(sum(counts[t] == 1 for t in texts) / len(texts))


def label_columns(frame: pd.DataFrame) -> list[str]:
    """Numeric 0/1 label columns of a manifest (not the standard columns, not "No Finding")."""
    out = []
    for column in frame.columns:
        if column in MANIFEST_COLUMNS or column == "No Finding" or not pd.api.types.is_numeric_dtype(frame[column]):
            continue
        if set(frame[column].dropna().unique()) <= {0, 1, -1}:
            out.append(column)
    return out


def testbed_info(manifest: str | Path, grid: int = 16, folds: int = 5, seed: int = 0) -> TestbedInfo:
    """Measure what reports, images and heatmaps carry in `manifest` (see the module docstring)."""
    path = Path(manifest)
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""], low_memory=False)
    frame["heatmap"] = frame.get("heatmap", pd.Series([""] * len(frame))).fillna("").astype(str)
    frame["text"] = frame["text"].fillna("").astype(str)
    rows = frame[frame["heatmap"] != ""].reset_index(drop=True)
    if len(rows) < 2 * folds:
        raise ValueError(f"{path}: {len(rows)} rows have a heatmap; testbed-info needs at least {2 * folds} "
                         f"(with --folds {folds})")
    root = path.parent
    heat = load_grid([root / p for p in rows["heatmap"]], grid)  # (N, grid²)
    heat = heat / np.maximum(heat.max(1, keepdims=True), 1e-12)  # peak-normalised, as the loaders serve them
    image = load_grid([root / p for p in rows["image"]], grid)
    words = text_features(rows["text"].tolist())
    both = np.concatenate([words, image], axis=1)
    columns = label_columns(rows)
    labels = rows[columns].fillna(0).clip(lower=0).to_numpy(dtype=np.float64)
    r2_report, r2_image, r2_both = (cross_validated_r2(x, heat, folds, seed) for x in (words, image, both))
    aucs = [cross_validated_auc(x, labels, folds, seed) for x in (words, heat, np.concatenate([words, heat], 1))]
    test = frame.loc[frame["split"].astype(str) == "test", "text"].tolist()
    return TestbedInfo(rows=len(rows), r2_report=r2_report, r2_image=r2_image, r2_both=r2_both, noise=1 - r2_both,
                       auc_report=aucs[0], auc_heatmap=aucs[1], auc_both=aucs[2],
                       retrieval_ceiling=retrieval_ceiling(test), test_rows=len(test))
