"""Is the λ effect a translation the probe's bias absorbs? (docs/gap_sweep.md, "The translation test")

Before renormalisation the λ-shift moves every image row by −λ/2·Δ and every text row by +λ/2·Δ: a
translation of the early-fusion features, which a logistic regression with an (unpenalised)
intercept absorbs exactly (w·(x + c) + b = w·x + (w·c + b)). So with ``renormalize=False`` the
probe's test predictions must not depend on λ, and any λ effect of the paper's protocol comes from
the renormalisation (each row rescaled by its own 1/‖x + c‖) or from the optimiser.

Takes gap-sweep's options (same manifest, checkpoint and embedding cache), fits a converged
scikit-learn logistic regression per class (lbfgs, tol 1e-8, with and without intercept) on the
train split at λ = 0 and λ = 1, with and without renormalisation, and prints the test macro-AUC,
the largest change of a test probability, and AUC(λ = 1) − AUC(λ = 0) with a paired bootstrap CI
over test rows (`medalign.metrics.stats.paired_bootstrap_ci`).

    OMP_NUM_THREADS=1 python scripts/gap_translation_check.py --config gap_sweep.yaml --ckpt demo_epoch3.ckpt [--C 1e4]
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch


def main(argv: list[str]) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from medalign.commands.gap_sweep import _encoder, _parse, _splits
    from medalign.metrics.geometry import gap_vector, lambda_shift
    from medalign.metrics.stats import paired_bootstrap_ci

    start = time.process_time()
    c_value = 1.0
    if "--C" in argv:  # the logistic regression's inverse L2 strength (large: nearly unregularised)
        i = argv.index("--C")
        c_value, argv = float(argv[i + 1]), argv[:i] + argv[i + 2:]
    cfg = _parse(argv)
    encoder, data = _encoder(cfg)
    splits, _ = _splits(cfg, encoder, cfg.uncertain or data.get("uncertain", "zeros"), cfg.blank or data.get("blank", "zeros"))
    (v_tr, t_tr, y_tr), (v_te, t_te, y_te) = splits["train"], splits["test"]
    v_tr, t_tr, v_te, t_te = (torch.as_tensor(a, dtype=torch.float64) for a in (v_tr, t_tr, v_te, t_te))
    y_tr, y_te = np.asarray(y_tr, float), np.asarray(y_te, float)
    delta = gap_vector(v_tr, t_tr)  # train split only, as the sweep

    def features(v, t, lam, renorm):
        a, b = lambda_shift(v, t, lam, delta, renormalize=renorm)
        return torch.cat([a, b], dim=1).numpy()

    def macro_auc(y, p):
        aucs = [roc_auc_score(y[:, k][~np.isnan(y[:, k])], p[:, k][~np.isnan(y[:, k])]) for k in range(y.shape[1])
                if len(np.unique(y[:, k][~np.isnan(y[:, k])])) == 2]
        return float(np.mean(aucs))

    print("| features | intercept | test AUC λ = 0 | λ = 1 | max |Δ p| | AUC(λ=1) − AUC(λ=0) [95 % bootstrap CI] | reading |")
    print("|---|---|---|---|---|---|---|")
    for renorm in (False, True):
        for intercept in (True, False):
            proba = {}
            for lam in (0.0, 1.0):
                x_tr, x_te = features(v_tr, t_tr, lam, renorm), features(v_te, t_te, lam, renorm)
                cols = []
                for k in range(y_tr.shape[1]):
                    known = ~np.isnan(y_tr[:, k])
                    model = LogisticRegression(C=c_value, tol=1e-8, max_iter=20000, fit_intercept=intercept)
                    cols.append(model.fit(x_tr[known], y_tr[known, k]).predict_proba(x_te)[:, 1])
                proba[lam] = np.stack(cols, axis=1)
            ci = paired_bootstrap_ci(macro_auc, y_te, proba[1.0], proba[0.0], n_boot=1000, seed=0)
            reading = "no detectable difference" if ci["low"] <= 0 <= ci["high"] else ("higher" if ci["low"] > 0 else "lower")
            print(f"| {'shift + renormalise' if renorm else 'shift only (a translation)'} | {'yes' if intercept else 'no'} "
                  f"| {macro_auc(y_te, proba[0.0]):.4f} | {macro_auc(y_te, proba[1.0]):.4f} "
                  f"| {np.abs(proba[1.0] - proba[0.0]).max():.1e} "
                  f"| {ci['mean_diff']:+.4f} [{ci['low']:+.4f}, {ci['high']:+.4f}] | {reading} |", flush=True)
    print(f"\nC = {c_value:g}; {len(y_tr)} train rows, {len(y_te)} test rows; {time.process_time() - start:.0f} s CPU")


if __name__ == "__main__":
    main(sys.argv[1:])
