"""GeometryCallback: keys and values in a 2-epoch run, the fixed subset, and `medalign geometry` (DDP = 1 process: test_ddp.py)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from medalign.training.callbacks import GeometryCallback, select_subset
from medalign.metrics.clustering import clustering_scores
from medalign.data.dataset import Collator
from medalign.metrics.geometry import geometry_summary
from medalign.training.module import ContrastiveModule

TINY = str(Path(__file__).parents[1] / "conf" / "tiny.yaml")
SUMMARY_KEYS = {
    "alignment", "uniformity", "modality_gap", "r_image", "r_text", "true_pair_cosine",
    "intra_cosine_image", "intra_cosine_text", "uniformity_image", "uniformity_text",
}
LABELLED_KEYS = SUMMARY_KEYS | {"nmi", "silhouette", "calinski_harabasz", "n_clustered", "n_pairs"}
SUBSET = 15  # of the fixture's 20 validation pairs


class RecordingGeometry(GeometryCallback):
    """Keeps a copy of `last` after every measured epoch."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.history: list[dict] = []

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        super().on_validation_epoch_end(trainer, pl_module)
        if self.last is not None:
            self.history.append({k: v.clone() if torch.is_tensor(v) else dict(v) for k, v in self.last.items()})


# ----------------------------------------------------------------------- subset choice


def test_select_subset_is_a_seeded_sample_of_the_unique_indices():
    indices = np.array([40, 7, 7, 13, 99, 2, 40, 55, 61, 8])
    unique = np.unique(indices)
    a = select_subset(indices, 4, seed=0)
    assert len(a) == 4 and set(a) <= set(unique) and np.all(np.diff(a) > 0)
    np.testing.assert_array_equal(a, select_subset(indices[::-1], 4, seed=0))  # order and duplicates do not matter
    assert any(not np.array_equal(a, select_subset(indices, 4, seed=s)) for s in range(1, 6))
    np.testing.assert_array_equal(select_subset(indices, 100, seed=3), unique)  # all when fewer


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="subset_size"):
        GeometryCallback(subset_size=1)
    with pytest.raises(ValueError, match="plot_every_n_epochs"):
        GeometryCallback(plot_every_n_epochs=-1)


# ------------------------------------------------------------- a 2-epoch run via the CLI


@pytest.fixture(scope="module")
def fitted(synthetic_dir, tmp_path_factory):
    """2 epochs of the tiny config with the callback, both default loggers, in a scratch folder."""
    from medalign.training.cli import cli_main  # imported here: DDP children import this module

    root = tmp_path_factory.mktemp("geometry_fit")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # the default loggers write to ./runs
        mp.setattr(sys, "argv", list(sys.argv))
        cli = cli_main(
            [
                "fit", "--config", TINY,
                "--data.manifest", str(synthetic_dir / "manifest.csv"),
                "--trainer.limit_train_batches", "2",
                "--checkpoint.dirpath", str(root / "ckpt"),
                "--trainer.callbacks+=tests.training.test_callbacks.RecordingGeometry",
                f"--trainer.callbacks.subset_size={SUBSET}",
                "--trainer.callbacks.plot_every_n_epochs=1",
            ]
        )
    callback = next(c for c in cli.trainer.callbacks if isinstance(c, RecordingGeometry))
    return cli, callback, root


@torch.no_grad()
def _encode_rows(module: ContrastiveModule, dataset, tokenizer, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Independent embeddings of the given manifest rows (eval transform, final weights)."""
    position = {int(r): i for i, r in enumerate(dataset.rows)}
    batch = Collator(tokenizer, max_length=32)([dataset[position[int(r)]] for r in rows])
    module.eval()
    out = module(batch)
    return out.image_emb.float(), out.text_emb.float()


@pytest.mark.slow
def test_two_epoch_run_logs_geometry_of_a_fixed_subset_to_every_logger(fitted):
    cli, callback, root = fitted
    val_rows = cli.datamodule.datasets["val"].rows
    assert len(callback.history) == 2  # one per epoch, none for sanity checking
    first, second = (h["index"].numpy() for h in callback.history)
    np.testing.assert_array_equal(first, second)  # the same rows every epoch
    assert len(first) == SUBSET and len(np.unique(first)) == SUBSET and set(first) <= set(val_rows)

    logged = {k.removeprefix("geometry/"): float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith("geometry/")}
    assert set(logged) == LABELLED_KEYS and logged["n_pairs"] == SUBSET

    # Values equal the library run on embeddings computed here, independently, for those rows.
    image, text = _encode_rows(cli.model, cli.datamodule.datasets["val"], cli.datamodule.tokenizer, first)
    torch.testing.assert_close(callback.last["image"], image, atol=1e-5, rtol=0)
    torch.testing.assert_close(callback.last["text"], text, atol=1e-5, rtol=0)
    for key, value in geometry_summary(image, text).items():
        assert logged[key] == pytest.approx(value, abs=1e-5), key
    labels = cli.datamodule.datasets["val"].labels.numpy()[np.searchsorted(val_rows, first)]
    single = (np.nan_to_num(labels) == 1).sum(1) == 1
    expected = clustering_scores(image[torch.from_numpy(single)], labels[single].argmax(1), seed=0)
    assert logged["n_clustered"] == single.sum()
    for key, value in expected.items():
        assert logged[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key

    # Every logger got the values: the CSV file and the TensorBoard events of the run folder.
    run_dir = root / cli.trainer.log_dir  # relative to the folder the run started in
    with open(run_dir / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("geometry/alignment")]
    assert len(rows) == 2 and float(rows[-1]["geometry/alignment"]) == pytest.approx(logged["alignment"], abs=1e-6)
    event_acc = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    events = event_acc.EventAccumulator(str(run_dir)).Reload()
    assert "geometry/modality_gap" in events.Tags()["scalars"]
    assert len(events.Scalars("geometry/modality_gap")) == 2

    for epoch in (0, 1):  # pictures every epoch, as configured
        png = run_dir / "geometry" / f"epoch_{epoch:03d}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(callback.seconds) == 2


@pytest.mark.slow
def test_geometry_command_reproduces_the_callback_on_the_same_rows(fitted, tmp_path, capsys):
    from medalign.commands.geometry import run

    cli, callback, root = fitted
    manifest = Path(cli.datamodule.hparams.manifest)
    out = tmp_path / "geometry"
    result = run(
        ["--ckpt", str(root / "ckpt" / "last.ckpt"), "--manifest", str(manifest), "--split", "val",
         "--max-pairs", str(SUBSET), "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--batch-size", "8"]
    )
    printed = capsys.readouterr().out
    assert "| metric (↑/↓: better) | value |" in printed and "| modality_gap |" in printed
    saved = json.loads((out / "geometry.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert saved["label_columns"] == cli.datamodule.label_columns  # defaults from the checkpoint
    for key, value in callback.last["metrics"].items():  # the checkpoint's weights are the last epoch's
        assert saved["metrics"][key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    assert (out / "geometry_val.png").read_bytes()[:4] == b"\x89PNG"


def test_demo_config_enables_the_callback_with_pictures(synthetic_dir, monkeypatch, tmp_path):
    from medalign.training.cli import cli_main

    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.chdir(tmp_path)
    cli = cli_main(["--config", "demo.yaml", "--data.manifest", str(synthetic_dir / "manifest.csv")], run=False)
    callbacks = [c for c in cli.trainer.callbacks if isinstance(c, GeometryCallback)]
    assert len(callbacks) == 1 and callbacks[0].plot_every_n_epochs > 0


# --------------------------------------------------------------------------- DDP


class _Pairs(torch.utils.data.Dataset):
    """19 labelled pairs with scattered manifest indices; 19 rows over 2 ranks forces sampler padding."""

    def __init__(self, n: int = 19) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = torch.randn(n, 3, 64, 64, generator=g)
        self.ids = torch.randint(5, 100, (n, 12), generator=g)
        self.labels = torch.nn.functional.one_hot(torch.arange(n) % 3, 4).float()
        self.labels[::5, 3] = 1.0  # some multi-label rows, left out of clustering
        self.labels[1::7, 2] = float("nan")
        self.rows = 1000 + 7 * np.arange(n)[::-1]  # manifest indices, not positions

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "input_ids": self.ids[i], "attention_mask": torch.ones(12, dtype=torch.long),
                "labels": self.labels[i], "index": int(self.rows[i])}


class _KnownRows(L.LightningDataModule):
    """Exposes ``datasets["val"].rows`` like MedAlignDataModule, so ranks filter before gathering."""

    def __init__(self) -> None:
        super().__init__()
        self.datasets = {"val": _Pairs()}

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.datasets["val"], batch_size=4)


def _validate(devices: int, known_rows: bool = True, callback: GeometryCallback | None = None) -> dict[str, float]:
    torch.manual_seed(0)
    module = ContrastiveModule(preset="tiny", vocab_size=100)
    trainer = L.Trainer(
        accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto",  # 2: a rank of tests/training/gloo_pair.py
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[callback or GeometryCallback(subset_size=SUBSET, seed=0)],
    )
    if known_rows:
        trainer.validate(module, datamodule=_KnownRows(), verbose=False)
    else:
        trainer.validate(module, DataLoader(_Pairs(), batch_size=4), verbose=False)
    return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("geometry/")}


def test_without_known_rows_the_first_epoch_fixes_the_subset():
    callback = GeometryCallback(subset_size=SUBSET, seed=0)
    learned = _validate(1, known_rows=False, callback=callback)  # keeps every row, then picks the subset
    np.testing.assert_array_equal(callback.subset, select_subset(_Pairs().rows, SUBSET, seed=0))
    first = callback.last["index"].clone()
    again = _validate(1, known_rows=False, callback=callback)  # filters batch by batch
    np.testing.assert_array_equal(callback.last["index"].numpy(), first.numpy())
    assert again == pytest.approx(learned, rel=1e-5, abs=1e-6)
    assert again == pytest.approx(_validate(1, known_rows=True), rel=1e-5, abs=1e-6)


def test_module_sees_the_data_context_after_the_data_module_set_up(tmp_path, synthetic_dir):
    import pandas as pd

    from tests.helpers import fit_tiny

    cli = fit_tiny(tmp_path, synthetic_dir, "--trainer.max_steps", "1", "--trainer.limit_val_batches", "1")
    frame = pd.read_csv(synthetic_dir / "manifest.csv")
    context = cli.model.data_context
    assert sorted(context.val_rows.tolist()) == frame.index[frame["split"] == "val"].tolist()  # from the manifest itself
    assert list(context.prompts) == context.label_columns and context.tokenizer is cli.datamodule.tokenizer
