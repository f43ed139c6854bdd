"""The embedded synthetic chest X-ray dataset (README "Data"; docs/architecture.md): generate it, or reuse it.

Layout written under `out_dir`:

    manifest.csv        image,text,split,heatmap,id,study_id,subject_id,<LABELS>,No Finding
    images/00000.png    8-bit grayscale, image_size x image_size
    heatmaps/00000.npy  float32 (image_size, image_size) in [0, 1]; heatmap subset only
    tokenizer/          WordPiece tokenizer built from the train reports (save_pretrained; deterministic)
    synthetic.json      the SyntheticConfig used and counts per label and split

Pair `i` is drawn from `np.random.default_rng([seed, i, stream])`, so its findings, image
and report do not depend on `n`. Splits, subjects and the heatmap subset come from seeded
shuffles. Heatmaps go to a random `heatmap_fraction` of the *train* pairs (eCLIP's expert
stream) and `test_heatmap_fraction` of the *test* pairs (saliency–gaze agreement), normals
included: a normal read's gaze is spread evenly over both lungs and the heart. With
`shortcut` P > 0, class-specific burn-in markers co-occur with findings in train/val and are
independent of them in test (`medalign.synthetic.shortcut`); a ``markers`` column lists them.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from PIL import Image

from medalign.run_folder import atomic_path
from medalign.synthetic.findings import LABELS, NO_FINDING, label_vector, sample_findings
from medalign.synthetic.images import render_heatmap, render_image
from medalign.synthetic.reports import write_report
from medalign.synthetic.shortcut import draw_markers, stamp

__all__ = ["LABELS", "SyntheticConfig", "ensure_synthetic", "generate_synthetic"]

GENERATOR_VERSION = 1  # bump when the rendering or report templates change
SPLITS = ("train", "val", "test")
_FINDINGS, _IMAGE, _REPORT = 0, 1, 2  # per-pair random streams
_MARKER = 3  # per-pair stream of the shortcut markers (P = 0 draws nothing from the others)
_SPLIT_STREAM, _HEATMAP_STREAM, _SUBJECT_STREAM, _TEST_HEATMAP_STREAM = 1_000_001, 1_000_002, 1_000_003, 1_000_004


@dataclass
class SyntheticConfig:
    n: int = 3000  # number of image-report pairs
    image_size: int = 64  # square side in pixels
    seed: int = 0
    heatmap_fraction: float = 0.05  # fraction of TRAIN pairs that get a gaze heatmap
    test_heatmap_fraction: float = 0.2  # fraction of TEST pairs with gaze (saliency–gaze evaluation)
    shortcut: float = 0.0  # P: a present finding carries its class's burn-in marker in train/val (synthetic/shortcut.py)
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train/val/test
    normal_fraction: float = 0.2  # pairs with no finding
    multi_fraction: float = 0.2  # pairs with 2 findings (the rest: exactly one finding)
    vocab_size: int = 2000  # WordPiece vocabulary size (an upper bound: the corpus is small)

    def __post_init__(self) -> None:
        self.split_fractions = tuple(float(f) for f in self.split_fractions)
        if self.n < 1 or self.image_size < 8:
            raise ValueError(f"SyntheticConfig: n ({self.n}) must be ≥ 1 and image_size ({self.image_size}) ≥ 8")
        if len(self.split_fractions) != 3 or min(self.split_fractions) < 0 or abs(sum(self.split_fractions) - 1) > 1e-6:
            raise ValueError(
                "SyntheticConfig.split_fractions must be 3 non-negative numbers summing to 1, "
                f"got {self.split_fractions}"
            )
        for name in ("heatmap_fraction", "test_heatmap_fraction", "shortcut", "normal_fraction", "multi_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SyntheticConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.normal_fraction + self.multi_fraction > 1.0:
            raise ValueError("SyntheticConfig: normal_fraction + multi_fraction must be ≤ 1")


def _assign_splits(config: SyntheticConfig) -> np.ndarray:
    """(n,) array of split names from a seeded shuffle; counts are rounded fractions."""
    n = config.n
    n_train = int(round(config.split_fractions[0] * n))
    n_val = min(int(round(config.split_fractions[1] * n)), n - n_train)
    order = np.random.default_rng([config.seed, _SPLIT_STREAM]).permutation(n)
    splits = np.empty(n, dtype=object)
    splits[order[:n_train]] = "train"
    splits[order[n_train : n_train + n_val]] = "val"
    splits[order[n_train + n_val :]] = "test"
    return splits


def _assign_subjects(splits: np.ndarray, seed: int) -> list[str]:
    """Group 1-3 pairs of the same split into one subject, so no subject spans two splits."""
    rng = np.random.default_rng([seed, _SUBJECT_STREAM])
    subjects = [""] * len(splits)
    counter = 0
    for split in SPLITS:
        members = rng.permutation(np.flatnonzero(splits == split))
        start = 0
        while start < len(members):
            size = int(rng.integers(1, 4))
            for i in members[start : start + size]:
                subjects[i] = f"p{counter:05d}"
            counter, start = counter + 1, start + size
    return subjects


def _heatmap_subset(splits: np.ndarray, config: SyntheticConfig) -> set[int]:
    """Pairs with a gaze heatmap: `heatmap_fraction` of train and `test_heatmap_fraction` of test."""
    chosen: set[int] = set()
    for split, fraction, stream in (("train", config.heatmap_fraction, _HEATMAP_STREAM),
                                    ("test", config.test_heatmap_fraction, _TEST_HEATMAP_STREAM)):
        rows = np.flatnonzero(splits == split)
        k = int(round(fraction * len(rows)))
        if fraction > 0 and len(rows):
            k = max(k, 1)
        rng = np.random.default_rng([config.seed, stream])
        chosen |= set(rng.choice(rows, size=k, replace=False).tolist())
    return chosen


def _counts(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Pairs, heatmaps and positives per label, per split."""
    counts = {}
    for split in SPLITS:
        rows = frame[frame["split"] == split]
        counts[split] = {"pairs": len(rows), "heatmaps": int((rows["heatmap"] != "").sum())}
        counts[split] |= {name: int(rows[name].sum()) for name in (*LABELS, NO_FINDING)}
    return counts


def plan_rows(out_dir: str | Path, config: SyntheticConfig) -> tuple[Path, np.ndarray, list[str], set[int]]:
    """Create ``images/`` and ``heatmaps/`` under `out_dir`; the rows' splits, subjects and gaze subset.

    Shared by every generator, so a set's splits, subjects and gaze rows follow its seed the same way.
    """
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "heatmaps").mkdir(exist_ok=True)
    splits = _assign_splits(config)
    return out, splits, _assign_subjects(splits, config.seed), _heatmap_subset(splits, config)


def generate_synthetic(out_dir: str | Path, config: SyntheticConfig | None = None, progress: bool = True) -> Path:
    """Write the dataset under `out_dir` (created; existing files are overwritten).

    Returns:
        The manifest path, `out_dir/manifest.csv`; it is written last, so its presence
        means the dataset is complete.
    """
    config = config or SyntheticConfig()
    out, splits, subjects, with_heatmap = plan_rows(out_dir, config)

    indices = range(config.n)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="synthetic CXR", unit="pair")
    all_findings = [
        sample_findings(np.random.default_rng([config.seed, i, _FINDINGS]), config.normal_fraction, config.multi_fraction)
        for i in range(config.n)
    ]
    train_rows = [i for i in range(config.n) if splits[i] == "train"] or list(range(config.n))
    prevalence = {name: float(np.mean([label_vector(all_findings[i])[name] for i in train_rows])) for name in LABELS}
    rows = []
    for i in indices:
        findings = all_findings[i]
        rendered = render_image(findings, config.image_size, np.random.default_rng([config.seed, i, _IMAGE]))
        markers = []
        if config.shortcut > 0:
            markers = draw_markers(label_vector(findings), splits[i], config.shortcut, prevalence,
                                   np.random.default_rng([config.seed, i, _MARKER]))
        image_rel = f"images/{i:05d}.png"
        Image.fromarray(stamp(rendered.image, markers)).save(out / image_rel)
        heatmap_rel = ""
        if i in with_heatmap:
            heatmap_rel = f"heatmaps/{i:05d}.npy"
            np.save(out / heatmap_rel, render_heatmap(rendered))
        text = write_report(findings, LABELS, np.random.default_rng([config.seed, i, _REPORT]))
        rows.append(
            dict(image=image_rel, text=text, split=splits[i], heatmap=heatmap_rel, id=f"syn{i:05d}",
                 study_id=f"s{i:05d}", subject_id=subjects[i], **label_vector(findings),
                 **({"markers": "|".join(markers)} if config.shortcut > 0 else {}))
        )
    frame = pd.DataFrame(rows)

    summary = dict(generator_version=GENERATOR_VERSION, config=asdict(config), counts=_counts(frame))
    return finish_generated(out, frame, config.vocab_size, {"synthetic.json": json.dumps(summary, indent=2) + "\n"})


def finish_generated(out: Path, frame: pd.DataFrame, vocab_size: int, files: dict[str, str]) -> Path:
    """Complete a generated set in `out`: the WordPiece tokenizer, the text `files`, then the manifest.

    The tokenizer learns the train split's reports (all reports if there is no train split). The
    manifest is written last and atomically, so its presence means the set is complete.
    """
    from medalign.data.tokenizer import train_wordpiece_tokenizer

    train_texts = frame.loc[frame["split"] == "train", "text"].tolist() or frame["text"].tolist()
    train_wordpiece_tokenizer(train_texts, out / "tokenizer", vocab_size=vocab_size)
    for name, text in files.items():
        (out / name).write_text(text)
    with atomic_path(out / "manifest.csv") as tmp:
        frame.to_csv(tmp, index=False)
    return out / "manifest.csv"


def ensure_synthetic(out_dir: str | Path, config: SyntheticConfig | None = None) -> Path:
    """Return `out_dir/manifest.csv`, generating the dataset first if it is absent.

    Safe when several processes (DDP ranks) call it at once (see `ensure_generated`). An
    existing dataset is reused even if it was built with another config (a warning says so).
    """
    out = Path(out_dir)
    config = config or SyntheticConfig()
    if (out / "manifest.csv").is_file():
        _warn_if_different(out, config)
    return ensure_generated(out, lambda tmp: generate_synthetic(tmp, config, progress=False), "synthetic dataset")


def ensure_generated(out_dir: str | Path, generate: Callable[[Path], object], what: str) -> Path:
    """Return `out_dir/manifest.csv`, calling `generate(folder)` first if it is absent.

    Safe when several processes (DDP ranks) call it at once: each generates into its own
    temporary folder next to `out_dir` and renames it into place; the losers discard theirs.
    """
    out = Path(out_dir)
    manifest = out / "manifest.csv"
    if manifest.is_file():
        return manifest
    if out.exists() and any(out.iterdir()):
        if manifest.is_file():  # another rank finished in the meantime
            return manifest
        raise FileExistsError(
            f"{out} exists and is not empty but has no manifest.csv; remove it or choose another folder "
            f"for the {what}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        generate(tmp)
        try:
            os.rename(tmp, out)  # atomic; replaces `out` only if it is an empty folder
        except OSError:
            if not manifest.is_file():  # not a lost race: something else is in the way
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _warn_if_different(out: Path, config: SyntheticConfig) -> None:
    try:
        stored = json.loads((out / "synthetic.json").read_text())["config"]
    except (OSError, ValueError, KeyError):
        return
    stored["split_fractions"] = tuple(stored["split_fractions"])
    if stored != asdict(config):
        warnings.warn(
            f"reusing the synthetic dataset in {out}, built with {stored}, not the requested {asdict(config)}"
        )
