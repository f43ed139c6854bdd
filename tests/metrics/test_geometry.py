"""`medalign.metrics.geometry` vs plain NumPy references (full N×N matrices), known cases, chunking, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medalign.metrics.geometry import (
    alignment,
    gap_vector,
    geometry_summary,
    intra_modal_cosine,
    lambda_shift,
    mean_resultant_length,
    modality_gap,
    true_pair_cosine,
    uniformity,
    wang_isola_uniformity,
)

# ------------------------------------------------------------ NumPy references


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)  # (Na, Nb)


def np_alignment(v, t):
    d2 = _sq_dists(v, t)
    negatives = np.where(np.eye(len(v), dtype=bool), np.inf, d2)
    return -np.mean(np.diag(d2) - negatives.min(axis=1))


def np_uniformity(v, t):
    return -np.log(np.mean(np.exp(-2 * _sq_dists(v, t))))


def np_wang_isola(x):
    upper = np.triu_indices(len(x), k=1)
    return np.log(np.mean(np.exp(-2 * _sq_dists(x, x)[upper])))


def np_gap_vector(v, t):
    return v.mean(0) - t.mean(0)


def np_resultant_length(x):
    return np.linalg.norm(x.mean(0))


def np_true_pair_cosine(v, t):
    return np.mean((v * t).sum(1) / (np.linalg.norm(v, axis=1) * np.linalg.norm(t, axis=1)))


def np_intra_cosine(x):
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = unit @ unit.T
    return cos[~np.eye(len(x), dtype=bool)].mean()


def np_lambda_shift(v, t, lam, delta):
    v2, t2 = v - lam / 2 * delta, t + lam / 2 * delta
    return v2 / np.linalg.norm(v2, axis=1, keepdims=True), t2 / np.linalg.norm(t2, axis=1, keepdims=True)


# ------------------------------------------------------------ data


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_pair(n: int, d: int, dtype: torch.dtype = torch.float64, seed: int = 0):
    """Paired (v, t) in two offset cones, so gap, alignment and R are non-trivial."""
    rng = np.random.default_rng(seed)
    offset = rng.normal(size=d)
    v = _unit(rng.normal(size=(n, d)) + offset)
    t = _unit(v + 0.5 * rng.normal(size=(n, d)) - offset)
    return torch.tensor(v, dtype=dtype), torch.tensor(t, dtype=dtype)


def np64(x: torch.Tensor) -> np.ndarray:
    return x.double().numpy()


TOL = {torch.float32: dict(rtol=1e-4, atol=2e-5), torch.float64: dict(rtol=1e-10, atol=1e-12)}
SHAPES = [(2, 3), (5, 16), (33, 8), (100, 64)]
DTYPES = [torch.float32, torch.float64]

SCALAR_METRICS = [
    ("alignment", lambda v, t: alignment(v, t), np_alignment),
    ("uniformity", lambda v, t: uniformity(v, t), np_uniformity),
    ("modality_gap", modality_gap, lambda v, t: np.linalg.norm(np_gap_vector(v, t))),
    ("true_pair_cosine", true_pair_cosine, np_true_pair_cosine),
    ("r_image", lambda v, t: mean_resultant_length(v), lambda v, t: np_resultant_length(v)),
    ("intra_cosine_text", lambda v, t: intra_modal_cosine(t), lambda v, t: np_intra_cosine(t)),
    ("uniformity_image", lambda v, t: wang_isola_uniformity(v), lambda v, t: np_wang_isola(v)),
]


# ------------------------------------------------------------ vs references


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("n,d", SHAPES)
@pytest.mark.parametrize("name,metric,reference", SCALAR_METRICS, ids=[m[0] for m in SCALAR_METRICS])
def test_scalar_metric_matches_numpy(name, metric, reference, n, d, dtype):
    v, t = make_pair(n, d, dtype, seed=n * d)
    result = metric(v, t)
    assert isinstance(result, float)
    np.testing.assert_allclose(result, reference(np64(v), np64(t)), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("n,d", SHAPES)
def test_geometry_summary_matches_numpy(n, d, dtype):
    v, t = make_pair(n, d, dtype, seed=1)
    vn, tn = np64(v), np64(t)
    expected = {
        "alignment": np_alignment(vn, tn),
        "uniformity": np_uniformity(vn, tn),
        "modality_gap": np.linalg.norm(np_gap_vector(vn, tn)),
        "r_image": np_resultant_length(vn),
        "r_text": np_resultant_length(tn),
        "true_pair_cosine": np_true_pair_cosine(vn, tn),
        "intra_cosine_image": np_intra_cosine(vn),
        "intra_cosine_text": np_intra_cosine(tn),
        "uniformity_image": np_wang_isola(vn),
        "uniformity_text": np_wang_isola(tn),
    }
    summary = geometry_summary(v, t, chunk_size=7)
    assert summary.keys() == expected.keys()
    for key, value in expected.items():
        np.testing.assert_allclose(summary[key], value, **TOL[dtype], err_msg=key)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_gap_vector_matches_numpy_and_keeps_dtype(dtype):
    v, t = make_pair(40, 12, dtype)
    delta = gap_vector(v, t)
    assert delta.shape == (12,) and delta.dtype == dtype
    np.testing.assert_allclose(np64(delta), np_gap_vector(np64(v), np64(t)), **TOL[dtype])


def test_unpaired_sizes_allowed_where_the_formula_allows():
    v, _ = make_pair(30, 8, seed=2)
    _, t = make_pair(17, 8, seed=3)
    np.testing.assert_allclose(uniformity(v, t), np_uniformity(np64(v), np64(t)), rtol=1e-10)
    np.testing.assert_allclose(np64(gap_vector(v, t)), np_gap_vector(np64(v), np64(t)), rtol=1e-10)


# ------------------------------------------------------------ chunking


@pytest.mark.parametrize(
    "metric",
    [
        lambda v, t, c: alignment(v, t, chunk_size=c),
        lambda v, t, c: uniformity(v, t, chunk_size=c),
        lambda v, t, c: wang_isola_uniformity(v, chunk_size=c),
        lambda v, t, c: geometry_summary(v, t, chunk_size=c)["alignment"],
    ],
    ids=["alignment", "uniformity", "wang_isola", "summary"],
)
@pytest.mark.parametrize("chunk_size", [1, 7, 49, 50])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_chunked_equals_unchunked(metric, chunk_size, dtype):
    v, t = make_pair(50, 16, dtype, seed=4)
    np.testing.assert_allclose(metric(v, t, chunk_size), metric(v, t, 10_000), **TOL[dtype])


def test_large_set_runs_chunked_without_n_squared_memory(monkeypatch):
    """The pairwise terms never hold more than chunk_size × N logits at once (counted, every block)
    and cover every row once; no time bound (speed is measured by scripts/, not asserted)."""
    import medalign.metrics.geometry as geometry

    n, d, chunk = 6_000, 16, 512
    v, t = make_pair(n, d, torch.float32, seed=5)
    blocks = []
    original = geometry._logit_blocks

    def counted(a, b, chunk_size):
        for start, logits in original(a, b, chunk_size):
            blocks.append((start, tuple(logits.shape)))
            yield start, logits

    monkeypatch.setattr(geometry, "_logit_blocks", counted)
    align, uniform = alignment(v, t, chunk_size=chunk), uniformity(v, t, chunk_size=chunk)
    assert np.isfinite(align) and np.isfinite(uniform)
    assert max(rows * cols for _, (rows, cols) in blocks) <= chunk * n  # an unchunked pass: n × n
    assert sum(rows for _, (rows, _) in blocks) == 2 * n  # each call covers every row once


# ------------------------------------------------------------ known cases


def test_identical_modalities_have_no_gap_and_unit_pair_cosine():
    v, _ = make_pair(20, 8, seed=6)
    assert modality_gap(v, v.clone()) == pytest.approx(0.0, abs=1e-12)
    assert true_pair_cosine(v, v.clone()) == pytest.approx(1.0, abs=1e-12)


def test_orthonormal_basis_alignment_and_uniformity():
    eye = torch.eye(6, dtype=torch.float64)  # ‖e_i − e_j‖² = 2 for i ≠ j, 0 for i = j
    assert alignment(eye, eye) == pytest.approx(2.0)
    assert uniformity(eye, eye) == pytest.approx(-np.log((1 + 5 * np.exp(-4)) / 6))
    assert wang_isola_uniformity(eye) == pytest.approx(-4.0)


def test_all_vectors_equal_give_r_one_and_intra_cosine_one():
    x = torch.nn.functional.normalize(torch.ones(10, 5, dtype=torch.float64), dim=1)
    assert mean_resultant_length(x) == pytest.approx(1.0)
    assert intra_modal_cosine(x) == pytest.approx(1.0)
    assert uniformity(x, x) == pytest.approx(0.0, abs=1e-12)


def test_antipodal_halves_give_r_zero():
    half, _ = make_pair(8, 6, seed=7)
    x = torch.cat([half, -half])  # (16, 6)
    assert mean_resultant_length(x) == pytest.approx(0.0, abs=1e-12)
    assert intra_modal_cosine(x) == pytest.approx(-1 / 15)  # Σ_{i≠j} cos = ‖Σx‖² − N = −N
    assert wang_isola_uniformity(torch.cat([half[:1], -half[:1]])) == pytest.approx(-8.0)


# ------------------------------------------------------------ λ-shift


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0, 1.5])
def test_lambda_shift_matches_numpy(lam, dtype):
    v, t = make_pair(25, 10, dtype, seed=8)
    v2, t2 = lambda_shift(v, t, lam)
    assert v2.dtype == t2.dtype == dtype
    ref_v, ref_t = np_lambda_shift(np64(v), np64(t), lam, np_gap_vector(np64(v), np64(t)))
    np.testing.assert_allclose(np64(v2), ref_v, **TOL[dtype])
    np.testing.assert_allclose(np64(t2), ref_t, **TOL[dtype])


def test_lambda_shift_with_given_delta_uses_it():
    v, t = make_pair(25, 10, seed=9)
    train_v, train_t = make_pair(40, 10, seed=10)
    delta = gap_vector(train_v, train_t)
    v2, t2 = lambda_shift(v, t, 0.6, delta=delta)
    ref_v, ref_t = np_lambda_shift(np64(v), np64(t), 0.6, np64(delta))
    np.testing.assert_allclose(np64(v2), ref_v, rtol=1e-10)
    np.testing.assert_allclose(np64(t2), ref_t, rtol=1e-10)


def test_lambda_zero_is_identity():
    v, t = make_pair(25, 10, torch.float32, seed=11)
    v2, t2 = lambda_shift(v, t, 0.0)
    torch.testing.assert_close(v2, v)
    torch.testing.assert_close(t2, t)


@pytest.mark.parametrize("lam", [0.0, 0.25, 0.5, 1.0])
def test_shift_before_renormalisation_scales_gap_by_one_minus_lambda(lam):
    v, t = make_pair(30, 12, seed=12)
    v2, t2 = lambda_shift(v, t, lam, renormalize=False)
    gap_after = v2.mean(0) - t2.mean(0)
    torch.testing.assert_close(gap_after, (1 - lam) * (v.mean(0) - t.mean(0)))
    if lam == 1.0:  # both centroids land on the midpoint of the original centroids
        midpoint = (v.mean(0) + t.mean(0)) / 2
        torch.testing.assert_close(v2.mean(0), midpoint)
        torch.testing.assert_close(t2.mean(0), midpoint)


# ------------------------------------------------------------ errors

_V, _T = make_pair(6, 4, seed=13)


def _unit_t(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x, dim=1)


ERROR_CASES = [
    ("v not normalised", lambda: alignment(2 * _V, _T), r"v must be L2-normalised.*= 1 "),
    ("t not normalised", lambda: uniformity(_V, 1.01 * _T), r"t must be L2-normalised.*= 0.01"),
    ("x not normalised", lambda: mean_resultant_length(0.5 * _V), r"x must be L2-normalised.*= 0.5"),
    ("1-D", lambda: intra_modal_cosine(_V[0]), r"x must be 2-D.*\(4,\)"),
    ("3-D", lambda: wang_isola_uniformity(_V[None]), r"x must be 2-D.*\(1, 6, 4\)"),
    ("N < 2", lambda: true_pair_cosine(_V[:1], _T[:1]), r"v needs at least 2 rows.*\(1, 4\)"),
    ("paired N", lambda: alignment(_V, _T[:5]), r"same shape.*\(6, 4\).*\(5, 4\)"),
    ("d mismatch", lambda: modality_gap(_V, _unit_t(_T[:, :3])), "same embedding dim"),
    ("dtype mismatch", lambda: uniformity(_V, _T.float()), "share device and dtype"),
    ("NaN", lambda: geometry_summary(_V, torch.full_like(_T, float("nan"))), "t contains NaN"),
    ("integer", lambda: mean_resultant_length(torch.ones(3, 1, dtype=torch.int64)), "floating-point"),
    ("chunk_size", lambda: alignment(_V, _T, chunk_size=0), "chunk_size must be a positive int"),
    ("delta shape", lambda: lambda_shift(_V, _T, 0.5, delta=torch.zeros(3)), r"delta must be.*\(4,\).*\(3,\)"),
]


@pytest.mark.parametrize("call,match", [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_invalid_input_raises_value_error_naming_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_non_tensor_raises_type_error():
    with pytest.raises(TypeError, match="v must be a torch.Tensor"):
        alignment(np64(_V), _T)
