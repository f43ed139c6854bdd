"""Evaluation results on disk: ``results.json`` (everything), ``results.csv`` and ``results.md`` (scalars)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from medalign.run_folder import RunFolder, atomic_path, write_text_atomic


def flatten_scalars(metrics: dict[str, Any], prefix: str = "") -> dict[str, float | int]:
    """Numeric leaves of a nested dict as ``a.b.c`` keys (lists such as confusion matrices are skipped)."""
    out: dict[str, float | int] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_scalars(value, name + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = value
    return out


def flatten_flags(metrics: dict[str, Any], prefix: str = "") -> dict[str, bool | str]:
    """Boolean and string leaves of a nested dict as ``a.b.c`` keys: the quality flags
    (``converged@1``, ``per_class_converged.Edema``, a status string) that `flatten_scalars` leaves out."""
    out: dict[str, bool | str] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_flags(value, name + "."))
        elif isinstance(value, (bool, str)):
            out[name] = value
    return out


def format_value(value: Any, digits: int = 4) -> str:
    """One number format for every table: ints as is, floats to `digits` significant digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return "nan" if math.isnan(value) else f"{value:.{digits}g}"


def format_table(header: list[str], body: list[list[Any]], numeric: set[int] | None = None) -> str:
    """The one Markdown table writer: `header` names, `body` rows of cells (numbers formatted by
    `format_value`), right-aligned `numeric` columns (default: columns whose cells are all numbers).
    """
    if numeric is None:
        numeric = {
            j for j in range(len(header))
            if body and all(isinstance(r[j], (int, float)) and not isinstance(r[j], bool) for r in body)
        }
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if j in numeric else "---" for j in range(len(header))) + "|"]
    lines += ["| " + " | ".join(format_value(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def metrics_table(metrics: dict[str, Any], title: str = "metric") -> str:
    """A flat (or nested) metric dict as a two-column Markdown table."""
    return format_table([title, "value"], [[k, v] for k, v in flatten_scalars(metrics).items()], numeric={1})


def rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (task, scalar metric), sweep details left to the JSON."""
    out = []
    for task in results["tasks"]:
        for metric, value in flatten_scalars({k: v for k, v in task["metrics"].items() if k != "sweep"}).items():
            out.append({"task": task["name"], "type": task["type"], "dataset": Path(task["manifest"]).name,
                        "split": task["split"], "n": task["n"], "metric": metric, "value": value})
    return out


def markdown_table(results: dict[str, Any]) -> str:
    """A Markdown summary: the encoder and checkpoint, then one line per task metric."""
    enc = results["encoder"]
    hashes = {t["name"]: t["manifest_sha256"][:8] for t in results["tasks"]}
    body, last = [], None
    for row in rows(results):
        first = row["task"] != last
        last = row["task"]
        task, dataset = (row["task"], f"{row['dataset']} ({hashes[row['task']]})") if first else ("", "")
        split, n = (row["split"], row["n"]) if first else ("", "")
        body.append([task, dataset, split, n, row["metric"], row["value"]])
    table = format_table(["task", "dataset (sha256)", "split", "n", "metric", "value"], body, numeric={3, 5})
    return f"**encoder** {enc['name']} (sha256 {enc['fingerprint'][:12]})\n\n{table}"


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def write_results(results: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write results.json, results.csv and results.md into `out_dir`; returns their paths.

    Adds ``code`` (package version, git commit: `medalign.provenance.code_identity`) to `results`
    when it has none, so every results.json says which code produced it.
    """
    from medalign.provenance import code_identity

    results.setdefault("code", code_identity())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / RunFolder.RESULTS
    paths = {"json": json_path, "csv": json_path.with_suffix(".csv"), "md": json_path.with_suffix(".md")}
    with atomic_path(paths["csv"]) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["task", "type", "dataset", "split", "n", "metric", "value"])
        writer.writeheader()
        writer.writerows(rows(results))
    write_text_atomic(paths["md"], markdown_table(results) + "\n")
    # results.json last: its presence is what marks the evaluation finished (benchmark cells look for it)
    write_text_atomic(json_path, json.dumps(_nan_to_none(results), indent=2, default=str))  # strict JSON: NaN → null
    return paths
