"""Table 3 of the eCLIP paper: generated vs true reports, by BLEU-2, BERTScore recall, MPNet and CheXbert similarity.

Kumar & Marttinen (2024), Table 3, score reports a frozen LLM wrote from the 5 retrieved reports
(`report_retrieval`) against the test image's own report:

* **BL-2**: corpus BLEU with n-grams up to 2 (sacrebleu ``BLEU(max_ngram_order=2)``, default
  ``13a`` tokenisation, reported in [0, 1]);
* **B-R**: BERTScore recall (Zhang et al. 2020, Eq. 2): each reference token's best cosine
  match among the candidate's tokens, averaged over reference tokens (special tokens excluded,
  no idf weighting, no baseline rescaling), from a local BERT-style folder;
* **S_emb**: cosine of the two reports' sentence embeddings from a local sentence-transformers
  folder (MPNet, ``all-mpnet-base-v2`` in the paper's reference [38]);
* **CB_emb**: cosine of the two reports' [CLS] embeddings from a local CheXbert encoder folder
  (a transformers BERT folder; `chexbert_folder` converts the published ``chexbert.pth``).

Every model is read from a local folder; a missing one raises `FileNotFoundError` naming the
folder and the option that sets it. Scores are means over the reports.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

METRICS = ("BL-2", "B-R", "S_emb", "CB_emb")


def _folder(path: str | Path | None, option: str, what: str) -> Path:
    """`path` as a local model folder, or a `FileNotFoundError` naming it and the option that sets it."""
    if not path:
        raise FileNotFoundError(f"{what} needs a local model folder: set {option}")
    folder = Path(path)
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{what}: {folder} is not a local model folder with a config.json (set {option}; "
                                "nothing is downloaded)")
    return folder


def _check(candidates: Sequence[str], references: Sequence[str]) -> None:
    if len(candidates) != len(references) or not candidates:
        raise ValueError(f"need as many generated as reference reports (and at least one): {len(candidates)} vs {len(references)}")


def bleu2(candidates: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU-2 in [0, 1] (sacrebleu, one reference per candidate)."""
    _check(candidates, references)
    try:
        from sacrebleu.metrics import BLEU
    except ImportError as err:  # pragma: no cover - a dependency
        raise ImportError("BLEU-2 needs sacrebleu: pip install sacrebleu") from err
    return float(BLEU(max_ngram_order=2).corpus_score(list(candidates), [list(references)]).score / 100.0)


def _token_embeddings(texts: Sequence[str], folder: Path, layer: int | None, device: str) -> list[np.ndarray]:
    """Per text, the L2-normalised hidden states (T, H) of its non-special tokens."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True).to(device).eval()
    out = []
    for text in texts:
        tokens = tokenizer(text, return_tensors="pt", truncation=True, return_special_tokens_mask=True)
        special = tokens.pop("special_tokens_mask")[0].bool()
        with torch.no_grad():
            hidden = model(**tokens.to(device), output_hidden_states=True).hidden_states
        states = hidden[-1 if layer is None else layer][0][~special.to(device)]  # (T, H)
        out.append(torch.nn.functional.normalize(states.float(), dim=-1).cpu().numpy())
    return out


def bertscore_recall(
    candidates: Sequence[str], references: Sequence[str], model_dir: str | Path | None, layer: int | None = None,
    device: str = "cpu",
) -> float:
    """Mean BERTScore recall: R = mean over reference tokens of max cosine to a candidate token (Zhang et al. 2020)."""
    _check(candidates, references)
    folder = _folder(model_dir, "--bertscore-model", "BERTScore recall")
    cand = _token_embeddings(candidates, folder, layer, device)
    ref = _token_embeddings(references, folder, layer, device)
    scores = [float((r @ c.T).max(axis=1).mean()) if len(r) and len(c) else 0.0 for c, r in zip(cand, ref)]
    return float(np.mean(scores))


def sentence_similarity(candidates: Sequence[str], references: Sequence[str], model_dir: str | Path | None,
                        device: str = "cpu") -> float:
    """Mean cosine of sentence-transformers embeddings (MPNet in the paper) of each generated/true pair."""
    _check(candidates, references)
    folder = _folder(model_dir, "--mpnet-model", "MPNet sentence similarity")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as err:  # pragma: no cover - optional
        raise ImportError("MPNet similarity needs sentence-transformers: pip install sentence-transformers") from err
    model = SentenceTransformer(str(folder), device=device, local_files_only=True)
    a = model.encode(list(candidates), convert_to_numpy=True, normalize_embeddings=True)
    b = model.encode(list(references), convert_to_numpy=True, normalize_embeddings=True)
    return float(np.mean(np.sum(a * b, axis=1)))


def cls_similarity(candidates: Sequence[str], references: Sequence[str], model_dir: str | Path | None,
                   device: str = "cpu") -> float:
    """Mean cosine of the [CLS] last hidden states of each pair (CheXbert's encoder in the paper)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    _check(candidates, references)
    folder = _folder(model_dir, "--chexbert-model", "CheXbert similarity")
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True).to(device).eval()

    def embed(texts: Sequence[str]) -> torch.Tensor:
        rows = []
        for text in texts:  # one at a time: no padding enters the [CLS] state
            tokens = tokenizer(text, return_tensors="pt", truncation=True, max_length=512).to(device)
            with torch.no_grad():
                rows.append(model(**tokens).last_hidden_state[0, 0].float())
        return torch.nn.functional.normalize(torch.stack(rows), dim=-1)  # (N, H)

    return float((embed(candidates) * embed(references)).sum(-1).mean())


def chexbert_folder(checkpoint: str | Path, bert_dir: str | Path, out: str | Path) -> Path:
    """Turn the published CheXbert ``chexbert.pth`` (``module.bert.*`` keys) into a transformers BERT folder.

    Args:
        checkpoint: CheXbert's checkpoint (a dict with ``model_state_dict``).
        bert_dir: a local ``bert-base-uncased`` folder (config and tokenizer; CheXbert's base).
        out: folder written (config, weights, tokenizer).
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state = state.get("model_state_dict", state)
    bert = {k.split("bert.", 1)[1]: v for k, v in state.items() if "bert." in k}
    if not bert:
        raise ValueError(f"{checkpoint}: no 'bert.' weights (expected CheXbert's module.bert.* keys)")
    model = BertModel(BertConfig.from_pretrained(bert_dir, local_files_only=True))
    missing, unexpected = model.load_state_dict(bert, strict=False)
    if [m for m in missing if "position_ids" not in m] or unexpected:
        raise ValueError(f"{checkpoint}: weights do not fit {bert_dir}'s BERT (missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(bert_dir, local_files_only=True).save_pretrained(out)
    return Path(out)


def score_reports(
    candidates: Sequence[str], references: Sequence[str], bertscore_model: str | Path | None = None,
    mpnet_model: str | Path | None = None, chexbert_model: str | Path | None = None, device: str = "cpu",
) -> dict[str, float]:
    """The four Table 3 metrics of one model's generated reports."""
    return {
        "BL-2": bleu2(candidates, references),
        "B-R": bertscore_recall(candidates, references, bertscore_model, device=device),
        "S_emb": sentence_similarity(candidates, references, mpnet_model, device=device),
        "CB_emb": cls_similarity(candidates, references, chexbert_model, device=device),
    }


def read_generated(path: str | Path) -> tuple[list[str], list[str]]:
    """(generated, true) reports of a ``*_generated.jsonl`` written by the ``report_retrieval`` task."""
    generated, true = [], []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        record = json.loads(line)
        if "generated" not in record or "true_report" not in record:
            raise ValueError(f"{path} line {n}: needs 'generated' and 'true_report' (run report_retrieval with a generator)")
        generated.append(record["generated"])
        true.append(record["true_report"])
    return generated, true


def write_table(rows: dict[str, dict[str, float]], out: str | Path) -> Path:
    """Table 3 as Markdown (``<out>.md``) and JSON (``<out>.json``): one row per model."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = ["| Model | " + " | ".join(METRICS) + " |", "|---|" + "---:|" * len(METRICS)]
    lines += [f"| {name} | " + " | ".join(f"{m[k]:.3f}" for k in METRICS) + " |" for name, m in rows.items()]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    return out.with_suffix(".md")


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """``python -m medalign.evaluation.tasks.report_generation --run CLIP=a.jsonl --run eCLIP=b.jsonl ...``."""
    parser = argparse.ArgumentParser(prog="report_generation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", required=True, metavar="NAME=JSONL",
                        help="a model's *_generated.jsonl (report_retrieval with a generator); repeat per model")
    parser.add_argument("--bertscore-model", required=True, help="local BERT-style folder for BERTScore recall")
    parser.add_argument("--mpnet-model", required=True, help="local sentence-transformers folder (all-mpnet-base-v2)")
    parser.add_argument("--chexbert-model", required=True, help="local CheXbert encoder folder (see chexbert_folder)")
    parser.add_argument("--out", default="table3", help="output stem (.md and .json)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    rows = {}
    for spec in args.run:
        name, _, path = spec.partition("=")
        if not path:
            parser.error(f"--run {spec!r}: expected NAME=path/to/generated.jsonl")
        generated, true = read_generated(path)
        rows[name] = score_reports(generated, true, args.bertscore_model, args.mpnet_model, args.chexbert_model, args.device)
    print(write_table(rows, args.out).read_text())
    return rows


if __name__ == "__main__":  # pragma: no cover
    main()
