"""The λ-shift sweep with an early-fusion linear probe (Restrepo et al., 2026, "On the Cone Effect
and Modality Gap in Medical Vision–Language Embeddings", §2.2).

For each λ in a grid, both modalities are moved along the gap vector Δ = μ_v − μ_t and
renormalised (Eq. 5, `medalign.metrics.geometry.lambda_shift`), with Δ estimated on the **train split only**
(Eq. 6; the authors' released sweep used all splits, which leaks test statistics). A linear probe on
concat(v', t') is trained per (λ, seed) — all of them at once, see `batched_probe` — and scored by
ROC AUC from probabilities on its validation rows and on test. The best λ is the one with the highest
mean **validation** AUC; its test AUC is the result (the test argmax is kept only as an oracle
reference). Every probe reports whether its early stopping fired (`probe_config`'s convergence rule).
‖Δ‖ and the mean resultant length R (Eq. 7) of each modality are reported at every λ. Pure functions
of tensors: usable from a notebook on any embeddings.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from medalign.studies.gap.batched_probe import ProbeConfig, ProbeFit, ShiftedFeatures, Task, predict_proba, train_probes
from medalign.studies.gap.learnable_lambda import predict_learned, train_learnable_lambda
from medalign.studies.gap.probe_config import warn_unconverged
from medalign.metrics.classification import macro_average, per_class_auc
from medalign.metrics.geometry import gap_vector, lambda_shift, mean_resultant_length, modality_gap
from medalign.progress import format_seconds

log = logging.getLogger(__name__)

DEFAULT_LAMBDAS = tuple(round(0.1 * i, 1) for i in range(11))

Split = tuple[Any, Any, Any]  # (image (N, d), text (N, d), labels (N, C) 1/0/NaN or (N,) class ids)


def default_seeds(n: int = 5) -> list[int]:
    """The paper's five seeds as 42, 43, …"""
    return [42 + i for i in range(n)]


@dataclass
class SweepResult:
    """Everything the sweep measured; arrays are indexed [λ, seed, (class)].

    Attributes:
        lambdas: the λ grid (L,).
        seeds: the seeds (S,).
        task: ``multilabel`` or ``multiclass``.
        label_names: the C classes.
        auc: (L, S) macro test AUC.
        per_class_auc: (L, S, C) test AUC per class (NaN where a class lacks both outcomes).
        val_auc: (L, S) macro AUC on each probe's validation rows (what selects the best λ).
        converged: (L, S) whether each probe's early stopping fired within its budget.
        geometry: per λ, ‖Δ‖ and R of image / text on the train and test splits after the shift.
        delta: Δ from the train split, (d,).
        references: ``image_only`` / ``text_only`` → {"auc": (S,), "per_class_auc": (S, C), "val_auc": (S,),
            "converged": (S,)}.
        best_epoch: (L, S) epoch of the restored weights. epochs: (L, S) epochs trained.
        seconds: wall time of the probe training (the sweep, without references).
        sequential: whether the probes were trained one at a time.
        learned: with a learnable λ, ``lambda`` (S,) the λ each seed settled on, ``auc`` (S,),
            ``per_class_auc`` (S, C), ``best_epoch`` / ``epochs`` / ``converged`` (S,), ``history`` (S, epochs) λ per epoch.
    """

    lambdas: list[float]
    seeds: list[int]
    task: str
    label_names: list[str]
    auc: np.ndarray
    per_class_auc: np.ndarray
    geometry: list[dict[str, float]]
    delta: np.ndarray
    val_auc: np.ndarray | None = None
    converged: np.ndarray | None = None
    references: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    best_epoch: np.ndarray | None = None
    epochs: np.ndarray | None = None
    seconds: float = 0.0
    sequential: bool = False
    learned: dict[str, np.ndarray] | None = None

    @property
    def auc_mean(self) -> np.ndarray:
        return self.auc.mean(axis=1)

    @property
    def auc_std(self) -> np.ndarray:
        return self.auc.std(axis=1, ddof=1) if self.auc.shape[1] > 1 else np.zeros(len(self.lambdas))

    @property
    def best_index(self) -> int:
        """Index of the λ with the highest mean validation AUC over seeds (the first on ties)."""
        return int(np.nanargmax(self.val_auc.mean(axis=1)))

    @property
    def best_lambda(self) -> float:
        """The λ selected on validation AUC; report ``auc_mean[best_index]`` (its test AUC)."""
        return self.lambdas[self.best_index]

    @property
    def test_argmax_index(self) -> int:
        """Index of the λ with the highest mean test AUC: an oracle for reference, never a result."""
        return int(np.nanargmax(self.auc_mean))

    @property
    def n_unconverged(self) -> int:
        """Probes (grid, references, learned λ) whose early stopping never fired."""
        flags = [self.converged, *(ref["converged"] for ref in self.references.values())]
        flags += [self.learned["converged"]] if self.learned is not None else []
        return int(sum((~np.asarray(f, bool)).sum() for f in flags if f is not None))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: lists instead of arrays, NaN kept as float('nan')."""
        out = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()}
        out["references"] = {name: {k: np.asarray(v).tolist() for k, v in ref.items()} for name, ref in self.references.items()}
        if self.learned is not None:
            out["learned"] = {k: np.asarray(v).tolist() for k, v in self.learned.items()}
            out["learned"].update(lambda_mean=float(np.mean(self.learned["lambda"])), auc_mean=float(np.mean(self.learned["auc"])))
        out.update(auc_mean=self.auc_mean.tolist(), auc_std=self.auc_std.tolist(), val_auc_mean=self.val_auc.mean(1).tolist(),
                   best_lambda=self.best_lambda, best_lambda_selected_on="validation AUC",
                   best_lambda_test_auc=float(self.auc_mean[self.best_index]),
                   test_argmax_lambda_oracle=self.lambdas[self.test_argmax_index],
                   n_unconverged=self.n_unconverged, delta_norm=float(np.linalg.norm(self.delta)))
        return out


def lambda_features(v: Tensor, t: Tensor, delta: Tensor, lambdas: Sequence[float]) -> ShiftedFeatures:
    """The probe inputs concat(v', t') for every λ, kept implicit (see `ShiftedFeatures`).

    Row i of λ_l is concat(lambda_shift(v, t, λ_l, Δ)) — the shift c = ∓λ/2·Δ and the scale
    1/‖x + c‖ per row are stored instead of the (L, N, 2d) tensor.

    Args:
        v: (N, d) image embeddings, t: (N, d) text embeddings, L2-normalised.
        delta: Δ, (d,), from the train split.
    """
    shifted = [lambda_shift(v, t, lam, delta, renormalize=False) for lam in lambdas]
    scales_v = torch.stack([1 / vs.norm(dim=1) for vs, _ in shifted])  # (L, N)
    scales_t = torch.stack([1 / ts.norm(dim=1) for _, ts in shifted])  # (L, N)
    step = torch.stack([(lam / 2) * delta for lam in lambdas])  # (L, d)
    return ShiftedFeatures([v, t], [-step, step], [scales_v, scales_t])


def probe_auc(y: np.ndarray, proba: np.ndarray, task: Task) -> tuple[float, np.ndarray]:
    """Test ROC AUC from probabilities: per class, macro over classes with both outcomes present.

    Args:
        y: (N, C) 1 / 0 / NaN (multilabel; NaN rows are left out of that class) or (N,) class ids
            (multiclass, scored one-vs-rest).
        proba: (N, C) probabilities.

    Returns:
        (macro AUC, per-class AUCs (C,) with NaN where undefined).
    """
    if task == "multiclass" and y.ndim != 1:
        raise ValueError(f"multiclass truth must be (N,) class ids, got shape {y.shape}")
    per_class = per_class_auc(y, proba)
    return macro_average(per_class), per_class


def _as_split(split: Split, task: Task, name: str) -> tuple[Tensor, Tensor, Tensor]:
    v, t, y = (torch.as_tensor(np.asarray(a) if not isinstance(a, Tensor) else a) for a in split)
    v, t = v.float(), t.float()
    if task == "multiclass":
        if y.dim() == 2:  # one-hot → ids; every row must be single-label
            ones = (torch.nan_to_num(y.float()) == 1).sum(1)
            if not bool((ones == 1).all()):
                raise ValueError(f"{name}: multiclass labels need exactly one positive class per row; "
                                 f"{int((ones != 1).sum())} of {len(y)} rows have {sorted(set(ones.tolist()) - {1})}")
            y = torch.nan_to_num(y.float()).argmax(1)
        y = y.long()
    else:
        y = y.float()
        if y.dim() != 2:
            raise ValueError(f"{name}: multilabel labels must be (N, C), got shape {tuple(y.shape)}")
    if not len(v) == len(t) == len(y):
        raise ValueError(f"{name}: image {tuple(v.shape)}, text {tuple(t.shape)} and labels {tuple(y.shape)} differ in N")
    return v, t, y


def _geometry(v: Tensor, t: Tensor, delta: Tensor, lam: float) -> dict[str, float]:
    vs, ts = lambda_shift(v, t, lam, delta)
    return {"gap": modality_gap(vs, ts), "R_image": mean_resultant_length(vs), "R_text": mean_resultant_length(ts)}


def _score(feats: ShiftedFeatures, fit: ProbeFit, y: Tensor, task: Task) -> tuple[np.ndarray, np.ndarray]:
    """(macro AUC (L, S), per-class AUC (L, S, C)) of every probe on `feats`."""
    proba = predict_proba(feats, fit, task).numpy()  # (L, S, N, C)
    scores = [[probe_auc(y.numpy(), proba[l, s], task) for s in range(proba.shape[1])] for l in range(proba.shape[0])]
    return np.array([[m for m, _ in row] for row in scores]), np.array([[pc for _, pc in row] for row in scores])


def _val_auc(train: ShiftedFeatures, y_tr: Tensor, val: ShiftedFeatures | None, y_va: Tensor | None, fit: ProbeFit,
             task: Task) -> np.ndarray:
    """Macro AUC (L, S) of each probe on its own validation rows (positions in the pool train ⧺ val)."""
    pool, y = (train, y_tr) if val is None else (train.concat(val), torch.cat([y_tr, y_va]))
    proba = predict_proba(pool, fit, task).numpy()  # (L, S, N_pool, C)
    return np.array([[probe_auc(y[rows].numpy(), proba[l, s, rows], task)[0] for s, rows in enumerate(fit.val_rows)]
                     for l in range(proba.shape[0])])


def run_gap_sweep(
    train: Split,
    val: Split | None,
    test: Split,
    lambdas: Sequence[float] = DEFAULT_LAMBDAS,
    seeds: Sequence[int] | None = None,
    task: Task = "multilabel",
    label_names: Sequence[str] | None = None,
    config: ProbeConfig | None = None,
    sequential: bool = False,
    references: bool = True,
    learnable_lambda: bool = False,
    progress: bool | None = None,
) -> SweepResult:
    """Δ from train, λ-shift every split, train an early-fusion probe per (λ, seed), score on val and test.

    Args:
        train / val / test: (image (N, d), text (N, d), labels) as arrays or tensors; labels are
            (N, C) 1 / 0 / NaN for ``multilabel`` and (N,) ids or one-hot (N, C) for ``multiclass``.
            `val` None → 10 % of train is carved out per seed.
        lambdas: the λ grid (default 0, 0.1, …, 1).
        seeds: probe seeds (default 42 … 46).
        label_names: class names (default ``class_<c>``).
        config: probe optimisation settings.
        sequential: train the probes one at a time (reference / benchmark).
        references: also train image-only and text-only probes (λ = 0).
        learnable_lambda: also fit, per seed, a probe whose λ (init 0.5) is learned with it
            (`learnable_lambda.train_learnable_lambda`; θ's learning rate is ``config.lambda_lr``).
        progress: report each block of probes (epochs or probes, with an ETA) and log each block's result
            as it finishes (`medalign.progress`); False: quiet.
    """
    seeds = list(seeds) if seeds is not None else default_seeds()
    lambdas = [float(lam) for lam in lambdas]
    v_tr, t_tr, y_tr = _as_split(train, task, "train")
    v_te, t_te, y_te = _as_split(test, task, "test")
    v_va, t_va, y_va = _as_split(val, task, "val") if val is not None else (None, None, None)
    if task == "multilabel":
        n_classes = y_tr.shape[1]
    else:  # the named classes, even those absent from both splits
        n_classes = len(label_names) if label_names is not None else int(max(y_tr.max(), y_te.max())) + 1
    if label_names is not None and len(label_names) != n_classes:
        raise ValueError(f"label_names has {len(label_names)} names for {n_classes} classes")
    delta = gap_vector(v_tr, t_tr)  # Eq. 6: train rows only, applied to every split
    feats = {name: lambda_features(v, t, delta, lambdas) if v is not None else None
             for name, v, t in (("train", v_tr, t_tr), ("val", v_va, t_va), ("test", v_te, t_te))}
    started = time.perf_counter()
    fit = train_probes(feats["train"], y_tr, feats["val"], y_va, seeds, task, n_classes, config, sequential,
                       progress=progress, desc="gap sweep: early-fusion probes")
    seconds = time.perf_counter() - started
    cfg = config or ProbeConfig()
    warn_unconverged("gap sweep (early fusion)", fit.converged, cfg)
    auc, per_class = _score(feats["test"], fit, y_te, task)
    if progress is not False:  # partial output: the main result before the reference probes
        log.info("gap sweep: early-fusion probes done in %s; test AUC by λ (mean over seeds): %s", format_seconds(seconds),
                 ", ".join(f"{lam:g}: {a:.4f}" for lam, a in zip(lambdas, auc.mean(axis=1))))
    geometry = [{"lambda": lam, **{f"{k}_train": x for k, x in _geometry(v_tr, t_tr, delta, lam).items()},
                 **{f"{k}_test": x for k, x in _geometry(v_te, t_te, delta, lam).items()}} for lam in lambdas]
    result = SweepResult(lambdas, seeds, task, list(label_names or [f"class_{c}" for c in range(n_classes)]), auc,
                         per_class, geometry, delta.numpy(), _val_auc(feats["train"], y_tr, feats["val"], y_va, fit, task),
                         fit.converged, best_epoch=fit.best_epoch, epochs=fit.epochs, seconds=seconds, sequential=sequential)
    if references:
        for name, pick in (("image_only", 0), ("text_only", 1)):
            blocks = [(v_tr, t_tr), (v_va, t_va), (v_te, t_te)]
            plain = [ShiftedFeatures.plain(b[pick]) if b[0] is not None else None for b in blocks]
            ref = train_probes(plain[0], y_tr, plain[1], y_va, seeds, task, n_classes, config, sequential,
                               progress=progress, desc=f"gap sweep: {name} reference probes")
            warn_unconverged(f"gap sweep ({name} reference)", ref.converged, cfg)
            ref_auc, ref_pc = _score(plain[2], ref, y_te, task)
            result.references[name] = {"auc": ref_auc[0], "per_class_auc": ref_pc[0], "converged": ref.converged[0],
                                       "val_auc": _val_auc(plain[0], y_tr, plain[1], y_va, ref, task)[0]}
    if learnable_lambda:
        val_split = (v_va, t_va, y_va) if v_va is not None else None
        learned = train_learnable_lambda((v_tr, t_tr, y_tr), val_split, delta, seeds, task, n_classes, config,
                                         progress=progress)
        warn_unconverged("gap sweep (learnable λ)", learned.converged, cfg)
        proba = predict_learned(v_te, t_te, delta, learned, task).numpy()  # (S, N, C)
        scores = [probe_auc(y_te.numpy(), p, task) for p in proba]
        result.learned = {"lambda": learned.lambdas, "auc": np.array([m for m, _ in scores]),
                          "per_class_auc": np.array([pc for _, pc in scores]), "best_epoch": learned.best_epoch,
                          "epochs": learned.epochs, "converged": learned.converged, "history": learned.history}
    return result
