"""The saliency task's prompt rows follow the run's label policy, not the default one."""

from __future__ import annotations

import pandas as pd
import pytest

from medalign.evaluation.suite import DataDefaults, SuiteRunner
from medalign.evaluation.task_types import SaliencyTask
from medalign.evaluation.tasks.saliency import saliency_agreement

PROMPTS = "prompts/chexpert5.json"


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory, synthetic_dir):
    from tests.helpers import fit_tiny

    tmp = tmp_path_factory.mktemp("saliency_policy")
    fit_tiny(tmp, synthetic_dir, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1")
    return tmp / "ckpt" / "step3.ckpt"


@pytest.fixture()
def uncertain_manifest(synthetic_dir, tmp_path):
    """The synthetic manifest with one uncertain (-1) cell next to the single positive of the first gaze row."""
    frame = pd.read_csv(synthetic_dir / "manifest.csv", keep_default_na=False)
    for column in ("image", "heatmap"):
        frame[column] = [str(synthetic_dir / p) if p else "" for p in frame[column]]
    gaze = frame[(frame["split"] == "test") & (frame["heatmap"] != "")]
    classes = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]
    single = gaze[(gaze[classes] == 1).sum(axis=1) == 1]
    row = single.index[0]
    other = next(c for c in classes if frame.at[row, c] == 0)
    frame[other] = frame[other].astype(object)
    frame.at[row, other] = -1
    path = tmp_path / "manifest.csv"
    frame.to_csv(path, index=False)
    # hand count: rows without exactly one positive under zeros (-1 → 0) and under ones (-1 → 1)
    n_single = len(single)
    return path, len(gaze) - n_single, len(gaze) - n_single + 1


def test_saliency_agreement_applies_the_given_uncertain_policy(tiny_ckpt, uncertain_manifest):
    from medalign.data.prompts import load_prompts
    from medalign.evaluation.encoders import load_checkpoint_encoder
    from medalign.paths import resolve_config

    manifest, skipped_zeros, skipped_ones = uncertain_manifest
    encoder = load_checkpoint_encoder(tiny_ckpt)
    prompts = load_prompts(resolve_config(PROMPTS, (".json",)))
    common = dict(text="prompt", prompts=prompts, baselines=False, progress=False, allow_outside_paths=True)  # rows point into the fixture
    assert saliency_agreement(encoder, manifest, "test", "gradcam", **common)["skipped"] == skipped_zeros
    ones = saliency_agreement(encoder, manifest, "test", "gradcam", uncertain="ones", **common)
    assert ones["skipped"] == skipped_ones


def test_saliency_task_takes_the_runs_label_policy(tiny_ckpt, uncertain_manifest, tmp_path):
    from medalign.evaluation.encoders import load_checkpoint_encoder

    manifest, _, skipped_ones = uncertain_manifest
    defaults = DataDefaults(manifest=str(manifest), label_columns=[], prompts=PROMPTS, uncertain="ones", allow_outside_paths=True)
    runner = SuiteRunner(load_checkpoint_encoder(tiny_ckpt), defaults, tmp_path, None, progress=False)
    record = runner.run(SaliencyTask(text="prompt", baselines=False, panels=0))
    assert record["metrics"]["skipped"] == skipped_ones
    assert record["label_policy"] == {"uncertain": "ones", "blank": "zeros"}
