"""Paired 95 % CIs for the differences the study docs report as mean ± sd over seeds (issue 27).

The docs' older studies recorded each paired difference as mean ± sample sd over n seeds, not the
per-seed values; `paired_ci_from_summary` gives exactly the t interval and p-value `paired_ci` would
give on those values. Prints one Markdown table per doc.

    python scripts/doc_paired_cis.py
"""

from __future__ import annotations

from medalign.metrics.stats import format_ci, paired_ci_from_summary, reading

# doc → (question, Δ mean, Δ sd, n) as the doc reports them (paired by seed)
REPORTED = {
    "docs/gaze.md (shortcut study, 2026-11-29)": [
        ("eCLIP − CLIP, zero-shot F1, P = 0", -0.039, 0.051, 3),
        ("eCLIP − CLIP, zero-shot F1, P = 0.9", -0.011, 0.060, 3),
        ("CLIP at P = 0.9 − P = 0, zero-shot F1", -0.017, 0.062, 3),
        ("eCLIP at P = 0.9 − P = 0, zero-shot F1", 0.011, 0.020, 3),
        ("eCLIP − CLIP, NSS, P = 0.9", 0.103, 0.065, 3),
    ],
    "docs/benchmark.md (demo study, 2026-11-29)": [
        ("(i) clip_transfer − clip, probe AUC, fraction 0.3", 0.051, 0.012, 2),
        ("(i) clip_transfer − clip, probe AUC, fraction 1.0", 0.086, 0.012, 2),
        ("(i) clip_locked_image − clip_transfer, zero-shot F1, fraction 0.3", 0.027, 0.018, 2),
        ("(i) clip_locked_image − clip_transfer, zero-shot F1, fraction 1.0", -0.017, 0.024, 2),
        ("(ii) slip − clip, zero-shot F1, fraction 0.3", 0.036, 0.017, 2),
        ("(ii) slip − clip, zero-shot F1, fraction 1.0", -0.165, 0.018, 2),
        ("(iii) filip − clip, image→report R@10 (%), fraction 0.3", -0.3, 0.9, 2),
        ("(iii) filip − clip, image→report R@10 (%), fraction 1.0", -1.2, 1.6, 2),
    ],
}


def main() -> None:
    for doc, rows in REPORTED.items():
        print(f"\n{doc}\n")
        print("| question | Δ mean ± sd (n) | Δ [95 % CI] | p | reading |")
        print("|---|---|---|---|---|")
        for question, mean, sd, n in rows:
            ci = paired_ci_from_summary(mean, sd, n)
            print(f"| {question} | {mean:+.3g} ± {sd:.2g} ({n}) | {format_ci(ci)} | {ci['p_value']:.2g} | {reading(ci)} |")


if __name__ == "__main__":
    main()
