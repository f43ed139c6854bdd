"""The model card (``README.md``) of an exported folder: what the model is, how it was trained, its limits."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from medalign.run_folder import RunFolder, file_sha256


@dataclass
class CardInfo:
    """Facts the model card states.

    Attributes:
        checkpoint: the exported checkpoint's path.
        towers: ``image`` / ``text`` → how each tower is expressed in open_clip.
        embed_dim: shared-space width.
        temperature: 1 / exp(logit_scale).
        image_size: input side length.
        mean: normalisation mean (3 values).
        std: normalisation std (3 values).
        context_length: token positions per text.
        method: training method (``clip``, ``eclip``, ...).
        left_out: checkpoint parts not exported (e.g. eCLIP's ``processor``).
        global_step: optimizer steps trained.
        epoch: epochs trained.
        manifest: the training data manifest.
        config_yaml: the resolved training config.
        results: a ``medalign test`` results dict.
        hub_id: the repository the folder is meant for.
        differences: round-trip max abs differences (``image``, ``text``) and open_clip's logit scale.
        logit_bias: SigLIP's learned bias b (exported as open_clip's ``logit_bias``), None for InfoNCE.
    """

    checkpoint: str
    towers: dict[str, str]
    embed_dim: int
    temperature: float
    image_size: int
    mean: Sequence[float]
    std: Sequence[float]
    context_length: int
    method: str = "clip"
    left_out: list[str] = field(default_factory=list)
    global_step: int | None = None
    epoch: int | None = None
    manifest: str | None = None
    config_yaml: str = ""
    results: dict[str, Any] | None = None
    hub_id: str | None = None
    differences: dict[str, float] = field(default_factory=dict)
    logit_bias: float | None = None


def training_config(ckpt: Path, hparams: dict[str, Any], data: dict[str, Any]) -> str:
    """The run's resolved ``config.yaml`` (next to the checkpoint or one folder up), else the saved hyper-parameters as YAML."""
    import yaml

    config = RunFolder.config_of_checkpoint(ckpt)
    if config is not None:
        return f"# {config}\n" + config.read_text()
    plain = json.loads(json.dumps({"model": hparams, "data": data}, default=str))  # YAML-safe scalars only
    return "# the checkpoint's hyper_parameters / datamodule_hyper_parameters\n" + yaml.safe_dump(plain, sort_keys=False)


def _manifest_line(manifest: str | None) -> str:
    if not manifest:
        return "not recorded in the checkpoint"
    if not Path(manifest).is_file():
        return f"`{manifest}` (not found at export time: no hash)"
    return f"`{manifest}`, sha256 `{file_sha256(manifest)}`"


def model_card(info: CardInfo, name: str) -> str:
    """The README.md text (Hugging Face front matter + Markdown)."""
    from medalign.evaluation.results import markdown_table

    repo = info.hub_id or "ORG/NAME"
    lines = [
        "---", "library_name: open_clip", "license: other", "tags: [clip, medical-imaging, radiology, research-only]", "---",
        f"# {name}: a medalign image–text dual encoder (open_clip format)", "",
        f"Exported by `medalign export` from `{info.checkpoint}`. For research use only: **not a medical device, "
        "not for diagnosis or any clinical decision.**", "",
        "## Use", "", "```python", "import open_clip, torch",
        f"model, _, preprocess = open_clip.create_model_and_transforms('local-dir:{name}')  # or 'hf-hub:{repo}'"
        + ("" if info.hub_id else "; moved: see below"),
        f"tokenizer = open_clip.get_tokenizer('local-dir:{name}')",
        "with torch.no_grad():",
        "    image = model.encode_image(preprocess(pil_image)[None], normalize=True)",
        "    text = model.encode_text(tokenizer(['no acute cardiopulmonary process']), normalize=True)",
        "```", "",
        ("The config names the text tower by the hub id `%s` (load with `hf-hub:`)." % info.hub_id if info.hub_id else
         "Stock open_clip (3.3) resolves `text_cfg.hf_model_name` against the working directory, and this config "
         "names the text tower by the absolute path the folder was written to, so `local-dir:` loading works only while "
         "the folder stays there. A moved, copied or downloaded folder needs `medalign.export.load_open_clip(DIR)` "
         "(every file it reads is inside the folder), or in plain open_clip: `text_cfg = json.load(open(f'{DIR}/open_clip_config.json'))"
         "['model_cfg']['text_cfg']; open_clip.create_model_and_transforms(f'local-dir:{DIR}', text_cfg={**text_cfg, "
         "'hf_model_name': DIR})`; medalign's `--evaluation.weights DIR` reads it from the folder wherever it is."),
        "",
        "## Architecture", "",
        f"- image tower: {info.towers.get('image', '?')}",
        f"- text tower: {info.towers.get('text', '?')}",
        f"- shared space: {info.embed_dim}-d, L2-normalised; temperature {info.temperature:.4g} "
        f"(logit scale {1 / info.temperature:.4g}, stored as its log)",
        *([f"- SigLIP bias b = {info.logit_bias:.6g}, exported as open_clip's `logit_bias` (`model(image, text)` returns "
            "it): a pair's match probability is σ(logit scale · cos + b)"] if info.logit_bias is not None else []),
        f"- training method: `{info.method}`"
        + (f"; left out (training-only): {', '.join(f'`{p}`' for p in info.left_out)}" if info.left_out else ""),
    ]
    if info.method == "eclip" or "processor" in info.left_out:
        lines.append("- eCLIP's heatmap processor (expert gaze heatmaps → image-tower inputs, Kumar & Marttinen 2024) is "
                     "used only during training and is not part of this export; the image tower embeds plain images.")
    lines += [
        "", "## Preprocessing", "",
        f"Images: {info.image_size} px, mean {list(info.mean)}, std {list(info.std)}, gray repeated to 3 channels. "
        f"Texts: the model's tokenizer (`open_clip.get_tokenizer`), {info.context_length} tokens.",
        "",
        "open_clip's `preprocess` (`resize_mode: shortest`, bilinear) is medalign's evaluation transform: on 8-bit "
        "grayscale files (or gray stored as RGB) it gives medalign's input tensor exactly (checked at export on a "
        "non-square picture). It differs on colour images (medalign uses the luma: give `image.convert('L')`), palette or "
        "alpha images (convert to `L` first) and 16-bit PNGs / DICOM, which PIL clips or cannot read: give "
        "`medalign.data.transforms.open_clip_image(path)` (scaled by the bit depth, rounded to 8 bits, as medalign "
        "evaluates them). open_clip's HF tokenizer also runs `ftfy` and HTML unescaping before "
        "tokenising, so texts with HTML entities or mojibake can get other ids than in medalign.",
        "", "## Training", "",
        f"- optimizer steps: {info.global_step if info.global_step is not None else 'unknown'}, "
        f"epoch index at save (0-based): {info.epoch if info.epoch is not None else 'unknown'}",
        f"- data manifest: {_manifest_line(info.manifest)}", "",
        "<details><summary>resolved training config</summary>", "", "```yaml", info.config_yaml.rstrip(), "```", "",
        "</details>", "",
    ]
    if info.results:
        lines += ["## Evaluation", "", markdown_table(info.results), ""]
    if info.differences:
        d = info.differences
        lines += ["## Export check", "",
                  f"open_clip's embeddings of this folder vs medalign's on fixed inputs (fp32, max abs difference): "
                  f"image {d['image']:.2e}, text {d['text']:.2e}; logit scale {d['logit_scale']:.6g}"
                  + (f"; logit bias {d['logit_bias']:.6g} (equal to the checkpoint's)" if "logit_bias" in d else "")
                  + (f"; open_clip's preprocess vs medalign's transform on a non-square 8-bit picture {d['preprocess']:.1e}"
                     if "preprocess" in d else "") + ".", ""]
    lines += [
        "## Intended use and limits", "",
        "- Research on image–text representation learning for medical images (retrieval, zero-shot "
        "classification, embedding geometry). Not validated for clinical use; do not use for diagnosis, triage "
        "or treatment decisions.",
        "- Embeddings carry the biases and label noise of the training reports and the population of the training "
        "data; performance on other sites, scanners, views or populations is unknown.",
        "- Models trained on medalign's synthetic data are for software testing only.",
        "",
    ]
    return "\n".join(lines)
