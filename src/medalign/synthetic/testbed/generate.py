"""`medalign synth --testbed gaze`: the gaze test bed, built on real assets (docs/testbed.md).

Layout written under `out_dir` (the standard manifest, as `synthetic.generate`):

    manifest.csv        image,text,split,heatmap,id,study_id,subject_id,<TESTBED_LABELS>,No Finding,lesions[,markers]
    images/00000.png    8-bit grayscale, image_size²
    heatmaps/00000.npy  float32 gaze heatmap in [0, 1]; `heatmap_fraction` of train, `test_heatmap_fraction` of test
    tokenizer/          WordPiece tokenizer of the train reports
    testbed.json        the TestbedConfig, the PadChest rates used and counts per split

Pair `i` is drawn from `np.random.default_rng([seed, i, stream])` (its findings, image, report
and markers each from their own stream), so the set is the same on every machine and pair `i`
does not depend on `n`. The ``lesions`` column lists every drawn lesion as
``label:side:zone:located:x0,y0,x1,y1`` (``distractor`` for the unreported ones).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from medalign.synthetic.findings import NO_FINDING
from medalign.synthetic.generate import ensure_generated, finish_generated, plan_rows
from medalign.synthetic.images import Rendered, _ellipse, _fill, _sigmoid, render_heatmap
from medalign.synthetic.shortcut import draw_markers, stamp
from medalign.synthetic.testbed.assets import TESTBED_LABELS, Assets, load_assets, lung_mask
from medalign.synthetic.testbed.lesions import Lesion, draw_lesion, fixations, jitter_box, side_and_zone
from medalign.synthetic.testbed.report import write_report

__all__ = ["TESTBED_LABELS", "TestbedConfig", "ensure_testbed", "generate_testbed", "sample_lesions"]

TESTBED_VERSION = 2  # bump when rendering, sampling or reports change
_FINDINGS, _IMAGE, _REPORT, _MARKER, _GAZE = 0, 1, 2, 3, 4  # per-pair random streams
# Each class's burn-in marker reuses one of `synthetic.shortcut`'s glyph slots.
MARKER_SLOT = {"Atelectasis": "Atelectasis", "Cardiomegaly": "Cardiomegaly", "Consolidation": "Consolidation",
               "Nodule": "Edema", "Pleural Effusion": "Pleural Effusion"}
GAZE_JITTER = 0.04  # sd of a fixation around its target, grid units ([-1, 1] spans the image)


@dataclass
class TestbedConfig:
    __test__ = False  # not a pytest class

    n: int = 7000  # image-report pairs (≥ 1,000 single-label test rows at the defaults)
    image_size: int = 64  # square side in pixels
    seed: int = 0
    heatmap_fraction: float = 0.05  # share of TRAIN pairs with gaze (eCLIP's expert stream; paper ~0.5–5 %)
    test_heatmap_fraction: float = 0.3  # share of TEST pairs with gaze (testbed-info, saliency–gaze agreement)
    location_omitted: float | None = None  # share of findings whose location the report omits; None: PadChest's per class
    distractors: float = 1.0  # mean number (Poisson) of unreported lesions per image; gaze ignores them
    shortcut: float = 0.9  # P: a present finding carries its class's marker in train/val; markers independent in test
    markers: str = "shortcut"  # "independent": every split's markers drawn like the test split's (the shortcut's control)
    split_fractions: tuple[float, float, float] = (0.65, 0.1, 0.25)  # train/val/test
    normal_fraction: float = 0.2  # pairs with no finding
    multi_fraction: float = 0.15  # pairs with 2 findings (the rest: exactly one)
    vocab_size: int = 2000  # WordPiece vocabulary size (upper bound)

    def __post_init__(self) -> None:
        self.split_fractions = tuple(float(f) for f in self.split_fractions)
        if self.n < 1 or self.image_size < 16:
            raise ValueError(f"TestbedConfig: n ({self.n}) must be ≥ 1 and image_size ({self.image_size}) ≥ 16")
        if len(self.split_fractions) != 3 or min(self.split_fractions) < 0 or abs(sum(self.split_fractions) - 1) > 1e-6:
            raise ValueError(f"TestbedConfig.split_fractions must be 3 non-negative numbers summing to 1, got "
                             f"{self.split_fractions}")
        names = ["heatmap_fraction", "test_heatmap_fraction", "shortcut", "normal_fraction", "multi_fraction"]
        for name in names + ["location_omitted"] * (self.location_omitted is not None):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"TestbedConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.distractors < 0:
            raise ValueError(f"TestbedConfig.distractors (a mean count) must be ≥ 0, got {self.distractors}")
        if self.markers not in ("shortcut", "independent"):
            raise ValueError(f"TestbedConfig.markers must be 'shortcut' or 'independent', got {self.markers!r}")
        if self.normal_fraction + self.multi_fraction > 1.0:
            raise ValueError("TestbedConfig: normal_fraction + multi_fraction must be ≤ 1")


def _place(label: str, assets: Assets, lung: np.ndarray, rng: np.random.Generator) -> tuple[float, ...]:
    """A real box of `label` (or of the distractors) that lies mostly on the lung field (≤ 20 tries)."""
    boxes = assets.boxes[label]
    size = lung.shape[0]
    for _ in range(20):
        box = boxes[int(rng.integers(len(boxes)))]
        if label == "Cardiomegaly":
            return tuple(float(b) for b in box)
        x0, y0, x1, y1 = (int(np.clip(round(b * size), 0, size)) for b in box)
        region = lung[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
        if region.size and region.mean() > 0.3:
            break
    return tuple(float(b) for b in box)


def _draw_lung(assets: Assets, size: int, rng: np.random.Generator) -> tuple[int, np.ndarray]:
    """A real lung mask with a lung field: 82 of the 517 shipped masks are blank (figures nobody
    annotated) and are redrawn, so every image has lungs for its lung lesions."""
    for _ in range(1000):
        mask = int(rng.integers(len(assets.mask_names)))
        lung = lung_mask(mask, size)
        if lung.any():
            return mask, lung
    raise RuntimeError("no non-blank lung mask in 1,000 draws: is torchxrayvision's semantic_masks_v7labs_lungs.zip damaged?")


def sample_lesions(config: TestbedConfig, i: int, assets: Assets) -> tuple[int, list[Lesion]]:
    """Pair `i`'s lung mask index and lesions (reported findings in class order, then distractors)."""
    rng = np.random.default_rng([config.seed, i, _FINDINGS])
    mask, lung = _draw_lung(assets, config.image_size, rng)
    u = rng.random()
    count = 0 if u < config.normal_fraction else (2 if u < config.normal_fraction + config.multi_fraction else 1)
    labels = [TESTBED_LABELS[k] for k in sorted(rng.choice(len(TESTBED_LABELS), size=count, replace=False).tolist())]
    lesions = []
    for label in labels:
        box = _place(label, assets, lung, rng)
        reader = jitter_box(box, assets.reader_jitter[int(rng.integers(len(assets.reader_jitter)))])
        omitted = 1 - assets.localised[label] if config.location_omitted is None else config.location_omitted
        side, zone = side_and_zone(label, box)
        lesions.append(Lesion(label, box, reader, side, zone, located=bool(rng.random() >= omitted)))
    for _ in range(int(rng.poisson(config.distractors))):
        box = _place("distractor", assets, lung, rng)
        lesions.append(Lesion("distractor", box, box, *side_and_zone("distractor", box), located=False))
    return mask, lesions


def render_pair(mask: int, lesions: list[Lesion], size: int, rng: np.random.Generator,
                gaze_rng: np.random.Generator) -> Rendered:
    """The image (lung field, heart, lesions) and the gaze fixations of the reported lesions."""
    lung = lung_mask(mask, size)
    axis = (np.arange(size) + 0.5) / size
    x, y = np.meshgrid(axis, axis)  # (S, S)
    body = _ellipse(x, y, 0.5, 0.56, 0.48, 0.58, 0.03)
    img = 0.08 + 0.42 * body
    ribs = np.clip(np.cos(2 * np.pi * (y + (x - 0.5) ** 2) / 0.08), 0, 1) ** 3
    img = img - 0.30 * lung + 0.06 * ribs * lung
    img = _fill(img, _sigmoid((0.06 - np.abs(x - 0.5)) / 0.01) * _sigmoid((0.6 - y) / 0.02) * body, 0.58, 0.85)
    heart = next((lesion.box for lesion in lesions if lesion.label == "Cardiomegaly"), None)
    if heart is None:  # a normal heart: a real cardiomegaly box shrunk to a normal cardiothoracic ratio
        x0, y0, x1, y1 = load_assets().boxes["Cardiomegaly"][int(rng.integers(len(load_assets().boxes["Cardiomegaly"])))]
        cx, half = (x0 + x1) / 2, (x1 - x0) / 2 * rng.uniform(0.72, 0.8)
        heart = (cx - half, y0, cx + half, y1)
    img = draw_lesion(img, lung, Lesion("Cardiomegaly", heart, heart, "", ""), rng)
    for lesion in lesions:
        if lesion.label != "Cardiomegaly":
            img = draw_lesion(img, lung, lesion, rng)
    contrast, brightness = rng.uniform(0.85, 1.15), rng.uniform(-0.05, 0.05)
    img = (img - 0.4) * contrast + 0.4 + brightness + rng.normal(0.0, 0.025, img.shape)
    image = np.round(np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)

    fix: list[tuple[float, float, float]] = []
    for lesion in lesions:
        if lesion.label != "distractor":  # the reader never dwells on what they did not report
            fix += fixations(lesion, gaze_rng)
    if not fix:  # a normal read scans both lungs and the heart
        fix += [(cx, cy, 0.6) for cx in (-0.45, 0.45) for cy in (-0.4, 0.15)] + [(0.05, 0.25, 0.6)]
    fix += [(gaze_rng.uniform(-0.7, 0.7), gaze_rng.uniform(-0.6, 0.5), 0.3) for _ in range(2)]  # stray glances
    fix = [(fu + gaze_rng.normal(0, GAZE_JITTER), fv + gaze_rng.normal(0, GAZE_JITTER), w) for fu, fv, w in fix]
    return Rendered(image=image, fixations=fix)


def _lesion_cell(lesions: list[Lesion]) -> str:
    return "|".join(f"{les.label}:{les.side}:{les.zone}:{int(les.located)}:" + ",".join(f"{b:.4f}" for b in les.box)
                    for les in lesions)


def generate_testbed(out_dir: str | Path, config: TestbedConfig | None = None, progress: bool = True) -> Path:
    """Write the test bed under `out_dir`; returns `out_dir/manifest.csv` (written last)."""
    config = config or TestbedConfig()
    assets = load_assets()
    out, splits, subjects, with_heatmap = plan_rows(out_dir, config)
    sampled = [sample_lesions(config, i, assets) for i in range(config.n)]
    label_rows = [{name: int(any(les.label == name for les in lesions)) for name in TESTBED_LABELS}
                  for _, lesions in sampled]
    train = [i for i in range(config.n) if splits[i] == "train"] or list(range(config.n))
    prevalence = {MARKER_SLOT[name]: float(np.mean([label_rows[i][name] for i in train])) for name in TESTBED_LABELS}
    indices = range(config.n)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="gaze test bed", unit="pair")
    rows = []
    for i in indices:
        mask, lesions = sampled[i]
        rendered = render_pair(mask, lesions, config.image_size, np.random.default_rng([config.seed, i, _IMAGE]),
                               np.random.default_rng([config.seed, i, _GAZE]))
        markers = []
        if config.shortcut > 0:
            slots = {MARKER_SLOT[name]: v for name, v in label_rows[i].items()}
            split = "test" if config.markers == "independent" else splits[i]  # the test split's draws: same stream
            markers = draw_markers(slots, split, config.shortcut, prevalence,
                                   np.random.default_rng([config.seed, i, _MARKER]))
        Image.fromarray(stamp(rendered.image, markers)).save(out / f"images/{i:05d}.png")
        heatmap = ""
        if i in with_heatmap:
            heatmap = f"heatmaps/{i:05d}.npy"
            np.save(out / heatmap, render_heatmap(rendered))
        reported = [les for les in lesions if les.label != "distractor"]
        text = write_report(reported, TESTBED_LABELS, assets, np.random.default_rng([config.seed, i, _REPORT]))
        slot_to_label = {slot: name for name, slot in MARKER_SLOT.items()}
        rows.append(dict(image=f"images/{i:05d}.png", text=text, split=splits[i], heatmap=heatmap, id=f"tb{i:05d}",
                         study_id=f"s{i:05d}", subject_id=subjects[i], **label_rows[i],
                         **{NO_FINDING: int(not reported)}, lesions=_lesion_cell(lesions),
                         **({"markers": "|".join(slot_to_label[m] for m in markers)} if config.shortcut > 0 else {})))
    frame = pd.DataFrame(rows)
    counts = {split: {"pairs": int((frame["split"] == split).sum()),
                      "single_label": int(((frame["split"] == split) & (frame[list(TESTBED_LABELS)].sum(1) == 1)).sum()),
                      "heatmaps": int(((frame["split"] == split) & (frame["heatmap"] != "")).sum())}
              for split in ("train", "val", "test")}
    summary = dict(testbed="gaze", version=TESTBED_VERSION, config=asdict(config),
                   padchest_localised=assets.localised, counts=counts)
    return finish_generated(out, frame, config.vocab_size, {"testbed.json": json.dumps(summary, indent=2) + "\n"})


def ensure_testbed(out_dir: str | Path, config: TestbedConfig | None = None) -> Path:
    """Return `out_dir/manifest.csv`, generating the test bed first if it is absent (safe across DDP ranks).

    Raises:
        ValueError: `out_dir` holds a test bed written by another `TESTBED_VERSION` or with another
            config (its ``testbed.json`` says which); it is never overwritten: a run would otherwise
            train on a different set than its config names.
    """
    config = config or TestbedConfig()
    manifest = ensure_generated(out_dir, lambda tmp: generate_testbed(tmp, config, progress=False), "gaze test bed")
    check_testbed(Path(out_dir), config)
    return manifest


def check_testbed(folder: Path, config: TestbedConfig) -> None:
    """Refuse a generated test bed whose version or config differ from what is asked (see `ensure_testbed`)."""
    summary_file = folder / "testbed.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    version = summary.get("version")
    wanted = json.loads(json.dumps(asdict(config)))  # tuples as the JSON's lists
    # a knob newer than the folder counts as its default (what the older code did)
    saved = {**json.loads(json.dumps(asdict(TestbedConfig()))), **summary.get("config", {})}
    changed = sorted(k for k in wanted if saved.get(k) != wanted[k])
    if version != TESTBED_VERSION or changed:
        why = (f"test-bed version {version} (this code writes version {TESTBED_VERSION})" if version != TESTBED_VERSION
               else "other settings: " + ", ".join(f"{k} {saved.get(k)!r} ≠ {wanted[k]!r}" for k in changed))
        raise ValueError(f"{folder} holds a gaze test bed generated with {why}; delete the folder to regenerate it, "
                         "or point data.synthetic.manifest to another folder")
