"""The λ-shift sweep: Δ from train only, AUC from probabilities, fusion finds the informative modality,
outputs, and the `medalign gap-sweep` command end to end."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from medalign.studies.gap.batched_probe import ProbeConfig
from medalign.studies.gap.plots import markdown_table, plot_auc_vs_lambda, plot_shift_pca, sweep_table, write_csv
from medalign.studies.gap.sweep import probe_auc, run_gap_sweep

FAST = ProbeConfig(optimizer="sgd", min_delta=0.0, lr=0.5, max_epochs=30, patience=5, batch_size=64)


pytestmark = pytest.mark.usefixtures("one_thread")


def _text_informative(n: int, d: int = 16, seed: int = 0):
    """Two labels carried by the text only; images are pure noise (in their own cone)."""
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, 2, generator=g) < 0.4).float()
    protos = torch.randn(2, d, generator=torch.Generator().manual_seed(5)) * 2
    t = F.normalize(y @ protos + torch.randn(n, d, generator=g) - 1.5, dim=1)
    v = F.normalize(torch.randn(n, d, generator=g) + 1.5, dim=1)
    return v, t, y


def test_early_fusion_finds_the_label_in_the_text_while_image_only_is_at_chance():
    result = run_gap_sweep(_text_informative(400), None, _text_informative(300, seed=1), lambdas=[0.0, 0.5, 1.0],
                           seeds=[42, 43], config=FAST, label_names=["a", "b"])
    assert result.auc.shape == (3, 2) and result.per_class_auc.shape == (3, 2, 2)
    assert result.auc.min() > 0.9
    assert abs(result.references["image_only"]["auc"].mean() - 0.5) < 0.08
    assert result.references["text_only"]["auc"].mean() > 0.9
    assert result.best_lambda == result.lambdas[int(np.argmax(result.auc.mean(1)))]


def test_delta_comes_from_the_train_rows_only():
    train, test = _text_informative(200), _text_informative(100, seed=1)
    expected = train[0].double().mean(0) - train[1].double().mean(0)  # μ_v − μ_t on train (Eq. 6)
    base = run_gap_sweep(train, None, test, lambdas=[0.0, 1.0], seeds=[42], config=FAST, references=False)
    np.testing.assert_allclose(base.delta, expected.numpy(), atol=1e-6)
    moved = (F.normalize(test[0] + 3 * torch.randn_like(test[0]), dim=1), F.normalize(test[1] - 2, dim=1), test[2])
    other = run_gap_sweep(train, None, moved, lambdas=[0.0, 1.0], seeds=[42], config=FAST, references=False)
    np.testing.assert_array_equal(other.delta, base.delta)  # test rows never enter Δ …
    assert other.geometry[0]["gap_test"] != base.geometry[0]["gap_test"]  # … though the test geometry changed
    # λ = 1 closes the train gap up to renormalisation; the test gap is shrunk by the same train Δ
    assert base.geometry[1]["gap_train"] < 0.1 * base.geometry[0]["gap_train"]


def test_auc_is_computed_from_probabilities_per_class():
    rng = np.random.default_rng(0)
    y = (rng.random((60, 3)) < 0.5).astype(np.float32)
    y[:, 2] = 1  # a class with one outcome only: undefined, left out of the macro average
    y[::5, 0] = np.nan
    proba = np.clip(y + rng.normal(0, 0.8, y.shape), 0, 1)
    proba = np.nan_to_num(proba, nan=0.5)
    macro, per_class = probe_auc(y, proba, "multilabel")
    known = ~np.isnan(y[:, 0])
    np.testing.assert_allclose(per_class[:2], [roc_auc_score(y[known, 0], proba[known, 0]), roc_auc_score(y[:, 1], proba[:, 1])])
    assert np.isnan(per_class[2]) and macro == pytest.approx(per_class[:2].mean())
    ids = rng.integers(0, 4, 80)
    p = rng.dirichlet(np.ones(4), 80)
    macro, _ = probe_auc(ids, p, "multiclass")
    assert macro == pytest.approx(roc_auc_score(ids, p, multi_class="ovr", average="macro"))


def test_multiclass_rejects_rows_without_exactly_one_label():
    v, t, y = _text_informative(50)
    with pytest.raises(ValueError, match="train: multiclass labels need exactly one positive"):
        run_gap_sweep((v, t, y), None, (v, t, y), task="multiclass", lambdas=[0.0], seeds=[42])


def test_multiclass_sweep_and_its_table_plots_and_csv(tmp_path):
    v, t, y = _text_informative(300)
    ids = (y[:, 0] + 2 * y[:, 1]).long()  # 4 classes carried by the text
    vt, tt, yt = _text_informative(200, seed=1)
    result = run_gap_sweep((v, t, ids), None, (vt, tt, (yt[:, 0] + 2 * yt[:, 1]).long()), task="multiclass",
                           lambdas=[0.0, 0.5, 1.0], seeds=[42, 43], config=FAST)
    assert result.auc.min() > 0.8 and result.label_names == [f"class_{c}" for c in range(4)]
    rows = sweep_table(result)
    assert [r["probe"] for r in rows] == ["early_fusion"] * 3 + ["image_only", "text_only"]
    assert sum(r["best"] for r in rows) == 1 and rows[result.best_index]["best"]
    assert rows[1]["auc_mean"] == pytest.approx(result.auc[1].mean())
    assert rows[1]["auc_sd"] == pytest.approx(np.std(result.auc[1], ddof=1))
    assert "★" in markdown_table(result).splitlines()[2 + result.best_index]
    write_csv(result, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().count("\n") == 6
    plot_auc_vs_lambda(result, tmp_path / "auc.png")
    plot_shift_pca(vt, tt, torch.from_numpy(result.delta), [0.0, 1.0], tmp_path / "pca.png")
    assert (tmp_path / "auc.png").stat().st_size > 1000 and (tmp_path / "pca.png").stat().st_size > 1000
    json.dumps(result.to_dict())  # JSON-able


@pytest.mark.slow
def test_gap_sweep_command_writes_every_output(tmp_path, synthetic_dir):
    from medalign.training.cli import cli_main
    from medalign.commands.gap_sweep import run

    cli_main(["fit", "--config", "tests/conf/tiny.yaml", "--data.manifest", str(synthetic_dir / "manifest.csv"),
              "--trainer.default_root_dir", str(tmp_path), "--trainer.logger", "false", "--trainer.max_epochs", "1",
              "--checkpoint.dirpath", str(tmp_path / "ckpt"), "--checkpoint.monitor", "null"])
    ckpt = tmp_path / "ckpt" / "last.ckpt"
    out = tmp_path / "sweep"
    results = run(["--config", "gap_sweep", "--manifest", str(synthetic_dir / "manifest.csv"), "--ckpt", str(ckpt),
                   "--lambdas", "[0.0, 0.5, 1.0]", "--seeds", "[42, 43]", "--probe.max_epochs", "3",
                   "--output_dir", str(out), "--cache_dir", str(tmp_path / "cache"), "--learnable_lambda", "true"])
    for name in ("gap_sweep.md", "gap_sweep.csv", "auc_vs_lambda.png", "pca_lambda.png", "results.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    saved = json.loads((out / "results.json").read_text())
    assert saved["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert saved["config"]["probe"]["max_epochs"] == 3 and saved["config"]["lambdas"] == [0.0, 0.5, 1.0]
    assert len(saved["result"]["auc"]) == 3 and len(saved["result"]["auc"][0]) == 2
    assert set(saved["n"]) == {"train", "val", "test"} and results["result"]["best_lambda"] in (0.0, 0.5, 1.0)
    assert "★" in (out / "gap_sweep.md").read_text() and "| learnable_lambda |" in (out / "gap_sweep.md").read_text()
    learned = saved["result"]["learned"]
    assert len(learned["lambda"]) == 2 and learned["lambda_mean"] == pytest.approx(sum(learned["lambda"]) / 2)
    assert list((tmp_path / "cache").iterdir())  # read through the shared embedding cache
    # 3 epochs < patience 20: no probe's early stopping can fire — 3 λ × 2 seeds + 2 references × 2 + 2 learned
    assert saved["result"]["n_unconverged"] == 12 and not any(map(any, saved["result"]["converged"]))
    md = (out / "gap_sweep.md").read_text()
    assert "12 probes did not converge" in md and "0/2 ⚠" in md
    assert "selected on validation AUC" in md and "test-argmax λ (oracle, not a result)" in md
