"""Tables and pictures of a λ-shift sweep (cone-effect paper, Fig. 2 and Fig. 3).

`sweep_table` / `markdown_table` / `write_csv`: validation and test AUC mean ± sd per λ (the λ
selected on validation AUC marked ★, the test argmax marked as an oracle), per-class test AUCs, how
many probes converged, ‖Δ‖ and R per modality. `plot_auc_vs_lambda`: AUC vs λ with error bars over seeds and the
image-only / text-only reference bands. `plot_shift_pca`: joint 2-D PCA of both modalities at
chosen λ values. Matplotlib's object API (no pyplot state), so any backend works.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from medalign.studies.gap.sweep import SweepResult
from medalign.evaluation.plots.style import legend_below, new_figure, save_figure
from medalign.evaluation.results import format_table
from medalign.evaluation.geometry import joint_pca
from medalign.metrics.geometry import lambda_shift


def _sd(a: np.ndarray) -> float:
    """Sample standard deviation over seeds (0 for one seed)."""
    return float(a.std(ddof=1)) if len(a) > 1 else 0.0


def _converged(flags: Any) -> dict[str, int]:
    flags = np.asarray(flags, bool)
    return {"converged": int(flags.sum()), "probes": int(flags.size)}


def sweep_table(result: SweepResult) -> list[dict[str, Any]]:
    """One row per λ (then one per reference probe): val / test AUC mean (sd), best (on val) and test-argmax
    flags, converged probes out of probes, per-class test AUC means, geometry."""
    rows = []
    per_class = np.nanmean(result.per_class_auc, axis=1) if result.per_class_auc.size else result.per_class_auc
    for l, lam in enumerate(result.lambdas):
        geo = result.geometry[l]
        rows.append({
            "probe": "early_fusion", "lambda": lam, "val_auc_mean": float(result.val_auc[l].mean()),
            "auc_mean": float(result.auc_mean[l]), "auc_sd": float(result.auc_std[l]),
            "best": l == result.best_index, "test_argmax": l == result.test_argmax_index, **_converged(result.converged[l]),
            **{f"auc_{name}": float(per_class[l, c]) for c, name in enumerate(result.label_names)},
            **{k: float(v) for k, v in geo.items() if k != "lambda"},
        })
    for name, ref in result.references.items():
        auc = np.asarray(ref["auc"])
        rows.append({
            "probe": name, "lambda": 0.0, "val_auc_mean": float(np.mean(ref["val_auc"])), "auc_mean": float(auc.mean()),
            "auc_sd": _sd(auc), "best": False, "test_argmax": False, **_converged(ref["converged"]),
            **{f"auc_{n}": float(np.nanmean(np.asarray(ref["per_class_auc"])[:, c])) for c, n in enumerate(result.label_names)},
        })
    if result.learned is not None:  # λ learned with the probe: λ mean ± sd over seeds
        lam, auc = np.asarray(result.learned["lambda"]), np.asarray(result.learned["auc"])
        rows.append({
            "probe": "learnable_lambda", "lambda": float(lam.mean()), "lambda_sd": _sd(lam), "auc_mean": float(auc.mean()),
            "auc_sd": _sd(auc), "best": False, "test_argmax": False, **_converged(result.learned["converged"]),
            **{f"auc_{n}": float(np.nanmean(np.asarray(result.learned["per_class_auc"])[:, c])) for c, n in enumerate(result.label_names)},
        })
    return rows


def write_csv(result: SweepResult, path: str | Path) -> Path:
    """`sweep_table` as CSV (missing geometry of reference rows left empty)."""
    rows = sweep_table(result)
    fields = list(dict.fromkeys(k for row in rows for k in row))
    path = Path(path)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def markdown_table(result: SweepResult) -> str:
    """The sweep as Markdown: λ, val AUC, test AUC mean ± sd, converged probes, per-class test AUC, test ‖Δ‖ and R.

    ★ bold: the λ selected on validation AUC (its test AUC is the result); † : the test-argmax λ (an
    oracle, not a result); ⚠ : some probes of the row did not converge (their AUCs are not results).
    """
    names = result.label_names
    head = ["probe", "λ", "val AUC", "test AUC (mean ± sd)", "converged", *names, "‖Δ‖ test", "R image", "R text"]
    body = []
    for row in sweep_table(result):
        auc = f"{row['auc_mean']:.4f} ± {row['auc_sd']:.4f}"
        auc = f"**{auc}** ★" if row["best"] else auc
        auc += " †" if row["test_argmax"] else ""
        conv = f"{row['converged']}/{row['probes']}" + (" ⚠" if row["converged"] < row["probes"] else "")
        val = f"{row['val_auc_mean']:.4f}" if "val_auc_mean" in row else ""
        geo = [f"{row[k]:.4f}" if k in row else "" for k in ("gap_test", "R_image_test", "R_text_test")]
        lam = {"early_fusion": f"{row['lambda']:g}", "learnable_lambda": f"{row['lambda']:.3f} ± {row.get('lambda_sd', 0):.3f}"}.get(row["probe"], "—")
        body.append([row["probe"], lam, val, auc, conv, *(f"{row['auc_' + n]:.4f}" for n in names), *geo])
    table = format_table(head, body, numeric=set(range(2, len(head))))  # the one table writer
    return table + ("\n\n★ λ selected on validation AUC (its test AUC is the result); † test-argmax λ (oracle, not a result)"
                    + ("; ⚠ probes that did not converge — their AUCs are not results" if result.n_unconverged else ""))


def plot_auc_vs_lambda(result: SweepResult, path: str | Path | None = None, title: str = ""):
    """Test AUC vs λ with ±1 sd error bars over seeds (Fig. 3); references as dashed bands.

    The λ selected on validation AUC is starred; the test argmax is drawn as a hollow circle labelled as an
    oracle; λ values with unconverged probes are crossed.
    """
    fig = new_figure((6.0, 5.2))
    ax = fig.subplots()
    ax.errorbar(result.lambdas, result.auc_mean, yerr=result.auc_std, marker="o", capsize=3, label="early fusion (image, text concatenated)")
    ax.plot([result.best_lambda], [result.auc_mean[result.best_index]], marker="*", markersize=14, color="tab:red",
            linestyle="none", label=f"best λ on val = {result.best_lambda:g} (test AUC shown)", zorder=4)
    oracle = result.test_argmax_index
    ax.plot([result.lambdas[oracle]], [result.auc_mean[oracle]], marker="o", markersize=12, markerfacecolor="none",
            color="grey", linestyle="none", label=f"test-argmax λ = {result.lambdas[oracle]:g} (oracle, not a result)")
    bad = [l for l in range(len(result.lambdas)) if not np.asarray(result.converged[l]).all()]
    if bad:
        ax.plot([result.lambdas[l] for l in bad], [result.auc_mean[l] for l in bad], marker="x", markersize=9,
                markeredgewidth=2, color="black", linestyle="none", label="some probes not converged", zorder=5)
    for (name, ref), colour in zip(result.references.items(), ("tab:green", "tab:purple")):
        mean, sd = float(np.mean(ref["auc"])), float(np.std(ref["auc"]))
        ax.axhline(mean, linestyle="--", color=colour, label=name.replace("_", "-"))
        ax.axhspan(mean - sd, mean + sd, color=colour, alpha=0.1)
    if result.learned is not None:
        lam, auc = np.asarray(result.learned["lambda"]), np.asarray(result.learned["auc"])
        ax.errorbar([lam.mean()], [auc.mean()], xerr=[lam.std()], yerr=[auc.std()], marker="D", color="tab:orange",
                    capsize=3, linestyle="none", label=f"learned λ = {lam.mean():.2f}")
    ax.set(xlabel="λ (gap shift fraction)", ylabel="test AUC (macro)", title=title or "AUC vs λ")
    ax.grid(alpha=0.3)
    legend_below(fig, ax, ncol=2)  # below the axes: no mark is hidden
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_shift_pca(
    v: torch.Tensor,
    t: torch.Tensor,
    delta: torch.Tensor,
    lambdas: Sequence[float],
    path: str | Path | None = None,
    max_points: int = 1000,
    seed: int = 0,
    title: str = "",
):
    """Joint 2-D PCA of λ-shifted images and texts, one panel per λ (Fig. 2).

    Args:
        v: (N, d) image embeddings, t: (N, d) text embeddings (L2-normalised, paired).
        delta: Δ, (d,), from the train split.
        lambdas: one panel each (e.g. 0, the best λ, 1).
        max_points: seeded sample of rows drawn.
    """
    rows = torch.from_numpy(np.sort(np.random.default_rng(seed).permutation(len(v))[:max_points]))
    v, t = v[rows], t[rows]
    fig = new_figure((4.2 * len(lambdas), 4.4))
    axes = np.atleast_1d(fig.subplots(1, len(lambdas)))
    for ax, lam in zip(axes, lambdas):
        vs, ts = lambda_shift(v, t, lam, delta)
        pv, pt = joint_pca(vs, ts)
        ax.scatter(*pv.T, s=6, alpha=0.6, c="tab:blue", label="image")
        ax.scatter(*pt.T, s=6, alpha=0.6, c="tab:orange", marker="^", label="text")
        ax.scatter(*pv.mean(0), s=80, c="navy", marker="X", label="image centroid")
        ax.scatter(*pt.mean(0), s=80, c="darkred", marker="X", label="text centroid")
        ax.set(title=f"λ = {lam:g}", xlabel="PC 1", ylabel="PC 2")
    legend_below(fig, ncol=4)
    if title:
        fig.suptitle(title)
    if path is not None:
        save_figure(fig, path)
    return fig
