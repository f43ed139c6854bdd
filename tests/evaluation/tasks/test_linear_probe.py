"""Linear probe: AUC on separable / random data, the fraction sweep and its plot."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from medalign.evaluation.tasks.linear_probe import fit_probe, fraction_sweep, plot_fraction_sweep, subsample


def _data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    y = np.stack([(x[:, 0] > 0), (x[:, 1] + 0.5 * rng.normal(size=n) > 0), rng.random(n) < 0.3], 1).astype(np.float32)
    return x, y


def test_multilabel_probe_matches_direct_sklearn_and_skips_unknown_labels():
    x, y = _data(400, 0)
    xt, yt = _data(200, 1)
    y[:50, 1] = np.nan  # unknown labels are left out of that class's fit
    result = fit_probe(x, y, xt, yt, ["sep", "noisy", "random"], seed=0)
    known = ~np.isnan(y[:, 1])
    direct = LogisticRegression(max_iter=1000, random_state=0).fit(x[known], y[known, 1])
    assert result["per_class_auc"]["noisy"] == pytest.approx(roc_auc_score(yt[:, 1], direct.predict_proba(xt)[:, 1]))
    assert result["per_class_auc"]["sep"] > 0.99 and 0.35 < result["per_class_auc"]["random"] < 0.65
    assert result["macro_auc"] == pytest.approx(np.mean(list(result["per_class_auc"].values())))


def test_multiclass_probe():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8)) * 3
    y = rng.integers(0, 3, size=300)
    x = centres[y] + rng.normal(size=(300, 8))
    result = fit_probe(x[:200], y[:200], x[200:], y[200:], ["a", "b", "c"], multilabel=False)
    assert result["macro_auc"] > 0.95


def test_fraction_sweep_sizes_seed_and_plot(tmp_path):
    x, y = _data(500, 0)
    xt, yt = _data(200, 1)
    sweep = fraction_sweep(x, y, xt, yt, ["sep", "noisy", "random"], fractions=(0.02, 0.1, 1.0), seed=0)
    assert [v["n_train"] for v in sweep.values()] == [10, 50, 500]
    assert sweep["1"]["per_class_auc"]["sep"] >= sweep["0.02"]["per_class_auc"]["sep"] - 0.02
    assert sweep == fraction_sweep(x, y, xt, yt, ["sep", "noisy", "random"], fractions=(0.02, 0.1, 1.0), seed=0)
    assert subsample(500, 0.1, 0).tolist() != subsample(500, 0.1, 1).tolist()
    path = plot_fraction_sweep(sweep, tmp_path / "p.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="fraction"):
        subsample(10, 0.0, 0)


def test_an_unconverged_fit_is_flagged_and_logged(caplog):
    x, y = _data(400, 0)
    xt, yt = _data(200, 1)
    with caplog.at_level("WARNING"):
        short = fit_probe(x, y, xt, yt, ["sep", "noisy", "random"], max_iter=2)
    # two L-BFGS iterations cannot reach sklearn's tolerance on these labels: n_iter_ == max_iter
    direct = LogisticRegression(max_iter=2, random_state=0).fit(x, y[:, 0])
    assert direct.n_iter_[0] == 2
    assert short["per_class_converged"]["sep"] is False and short["converged"] is False
    assert "did not converge" in caplog.text and "max_iter" in caplog.text
    full = fit_probe(x, y, xt, yt, ["sep", "noisy", "random"])
    assert full["converged"] is True
    # converged iff sklearn stopped before max_iter (an independent look at each model)
    for k, name in enumerate(["sep", "noisy", "random"]):
        model = LogisticRegression(max_iter=1000, random_state=0).fit(x, y[:, k])
        assert full["per_class_converged"][name] == bool(model.n_iter_[0] < 1000)
