"""Shared test set-up: offline, CPU, small and seeded."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # any hub id must fail fast, never retry
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One intra-op thread (here and in the commands tests start): the tiny models gain little from a second
# thread, and on a 2-core machine busy with other jobs two OpenMP threads wait on each other (a tiny
# training step: 0.22 s with one thread, 6.1 s with two, measured under load 6; docs/testing.md).
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path

import pytest
import torch

from medalign.synthetic.generate import SyntheticConfig, ensure_synthetic

torch.set_num_threads(1)

LABELS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic dataset (200 pairs, 64 px) shared by the whole session; treat as read-only."""
    out = tmp_path_factory.getbasetemp() / "synthetic"
    ensure_synthetic(out, SyntheticConfig(n=200, image_size=64, seed=0, heatmap_fraction=0.1))
    return out


@pytest.fixture(scope="session")
def tokenizer(synthetic_dir: Path):
    from medalign.data.tokenizer import load_tokenizer

    return load_tokenizer(synthetic_dir / "tokenizer")


def load_script(name: str):
    """``scripts/<name>.py`` imported as a module (the scripts are not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
