"""The translation argument of the λ-sweep study (docs/gap_sweep.md): before renormalisation the
λ-shift is a translation of the early-fusion features, which a logistic regression's intercept
absorbs exactly; without an intercept, or after renormalisation, the predictions move."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from medalign.metrics.geometry import gap_vector, lambda_shift


def _cone(n: int, d: int, axis: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = 0.4 * torch.randn(n, d, generator=g, dtype=torch.float64)
    x[:, axis] += 2.0  # a narrow cone around one axis per modality: a modality gap
    return F.normalize(x, dim=1)


@pytest.fixture(scope="module")
def data():
    v, t = _cone(300, 8, 0, 0), _cone(300, 8, 1, 1)
    y = (v[:, 2] + t[:, 3] > 0).numpy().astype(int)  # a label both modalities carry
    return v, t, y, gap_vector(v, t)


def _proba(v, t, y, delta, lam, renormalize, intercept):
    a, b = lambda_shift(v, t, lam, delta, renormalize=renormalize)
    x = torch.cat([a, b], dim=1).numpy()
    return LogisticRegression(C=1.0, tol=1e-10, max_iter=50000, fit_intercept=intercept).fit(x, y).predict_proba(x)[:, 1]


def test_the_shift_before_renormalisation_is_one_translation_per_modality(data):
    v, t, _, delta = data
    a, b = lambda_shift(v, t, 0.7, delta, renormalize=False)
    torch.testing.assert_close(a - v, (-0.35 * delta).expand_as(v))
    torch.testing.assert_close(b - t, (0.35 * delta).expand_as(t))


def test_an_intercept_absorbs_the_translation(data):
    v, t, y, delta = data
    p0, p1 = (_proba(v, t, y, delta, lam, renormalize=False, intercept=True) for lam in (0.0, 1.0))
    assert np.abs(p1 - p0).max() < 1e-4  # the same optimum: only the intercept moved


def test_without_an_intercept_or_with_renormalisation_predictions_move(data):
    v, t, y, delta = data
    base = _proba(v, t, y, delta, 0.0, renormalize=False, intercept=False)
    assert np.abs(_proba(v, t, y, delta, 1.0, renormalize=False, intercept=False) - base).max() > 1e-2
    base = _proba(v, t, y, delta, 0.0, renormalize=True, intercept=True)
    assert np.abs(_proba(v, t, y, delta, 1.0, renormalize=True, intercept=True) - base).max() > 1e-3
