"""Linear-probe sample efficiency: repeated subsamples (mean ± t-interval) and C chosen on validation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from medalign.evaluation.tasks.linear_probe import choose_C, fit_probe, fraction_sweep, mean_ci, subsample

CLASSES = ["sep", "noisy"]


def _data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    y = np.stack([(x[:, 0] > 0), (x[:, 1] + 0.8 * rng.normal(size=n) > 0)], 1).astype(np.float32)
    return x, y


def test_repeats_are_independent_fits_summarised_by_a_t_interval():
    x, y = _data(600, 0)
    xt, yt = _data(300, 1)
    sweep = fraction_sweep(x, y, xt, yt, CLASSES, fractions=(0.05, 1.0), seed=3, repeats=4)
    small = sweep["0.05"]
    assert small["repeats"] == 4 and sweep["1"]["repeats"] == 1 and sweep["1"]["macro_auc_ci95"] is None
    # each repeat is fit_probe on subsample(seed + r): recompute independently
    direct = [fit_probe(x[subsample(600, 0.05, 3 + r)], y[subsample(600, 0.05, 3 + r)], xt, yt, CLASSES, seed=3 + r)["macro_auc"]
              for r in range(4)]  # fmt: skip
    assert [run["macro_auc"] for run in small["runs"]] == pytest.approx(direct)
    assert len({tuple(subsample(600, 0.05, 3 + r)) for r in range(4)}) == 4  # different subsets
    assert small["macro_auc"] == pytest.approx(np.mean(direct))
    low, high = stats.t.interval(0.95, 3, loc=np.mean(direct), scale=stats.sem(direct))
    assert small["macro_auc_ci95"] == pytest.approx([low, high])
    assert small["macro_auc_sd"] == pytest.approx(np.std(direct, ddof=1))
    # one repeat is the old single-subsample sweep
    single = fraction_sweep(x, y, xt, yt, CLASSES, fractions=(0.05,), seed=3)["0.05"]
    assert single["macro_auc"] == pytest.approx(direct[0]) and single["macro_auc_ci95"] is None


def test_C_is_chosen_on_validation_per_repeat():
    x, y = _data(400, 0)
    xv, yv = _data(200, 2)
    xt, yt = _data(200, 1)
    grid = (1e-4, 1.0, 100.0)
    best, scores = choose_C(x[:40], y[:40], xv, yv, CLASSES, grid)
    expected = {f"{C:g}": fit_probe(x[:40], y[:40], xv, yv, CLASSES, C=C)["macro_auc"] for C in grid}
    assert scores == pytest.approx(expected)
    assert scores[f"{best:g}"] == max(expected.values())
    sweep = fraction_sweep(x, y, xt, yt, CLASSES, fractions=(0.1,), repeats=2, C_grid=grid, val_x=xv, val_y=yv)
    for run in sweep["0.1"]["runs"]:
        assert run["C"] in grid and run["C_scores"][f"{run['C']:g}"] == max(run["C_scores"].values())
    with pytest.raises(ValueError, match="validation rows"):
        fraction_sweep(x, y, xt, yt, CLASSES, fractions=(0.1,), C_grid=grid)


def test_mean_ci_edge_cases():
    assert mean_ci([0.7])[0] == 0.7 and np.isnan(mean_ci([0.7])[1])
    assert np.isnan(mean_ci([])[0])


def test_suite_task_passes_repeats_and_C_grid(tmp_path, synthetic_dir, tokenizer):
    import torch

    from medalign.evaluation.encoders import MedAlignEncoder
    from medalign.evaluation.suite import DataDefaults, LinearProbeTask, SuiteRunner
    from medalign.models import create_dual_encoder
    from tests.conftest import LABELS

    torch.manual_seed(0)
    encoder = MedAlignEncoder(create_dual_encoder("tiny", vocab_size=len(tokenizer)), tokenizer, max_length=32, image_size=64)
    defaults = DataDefaults(manifest=str(synthetic_dir / "manifest.csv"), label_columns=LABELS)
    runner = SuiteRunner(encoder, defaults, tmp_path / "out", tmp_path / "cache", batch_size=32, progress=False)
    record = runner.run(LinearProbeTask(fractions=[0.2, 1.0], repeats=3, C_grid=[0.1, 10.0]))
    sweep = record["metrics"]["sweep"] if "metrics" in record else record["sweep"]
    assert sweep["0.2"]["repeats"] == 3 and len(sweep["0.2"]["macro_auc_ci95"]) == 2
    assert all(run["C"] in (0.1, 10.0) for run in sweep["0.2"]["runs"])


def test_gloria_prompt_set():
    from medalign.data.prompts import load_prompts
    from medalign.paths import resolve_config
    from medalign.prepare.subsets import COMPETITION_5

    prompts = load_prompts(resolve_config("prompts/chexpert5_gloria.json", (".json",)))
    assert list(prompts) == COMPETITION_5
    assert {k: len(v) for k, v in prompts.items()} == {"Atelectasis": 3 * 7 * 10, "Cardiomegaly": 15,
                                                        "Consolidation": 4 * 6 * 8, "Edema": 6 * 3, "Pleural Effusion": 36}
    assert "small left bilateral pleural effusion" in prompts["Pleural Effusion"]  # GLoRIA's key order for this class
    assert "mild linear atelectasis at the lung bases" in prompts["Atelectasis"]
    assert "apperance of patchy consolidation at the right uppper lobe" in prompts["Consolidation"]  # as published
