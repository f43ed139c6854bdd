"""Table 3 metrics on tiny local models, each against an independent computation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from medalign.evaluation.tasks import report_generation as rg  # noqa: E402

GEN = ["no acute cardiopulmonary process", "mild pulmonary edema and small effusion"]
REF = ["no acute process", "small left effusion with mild edema"]


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory, synthetic_dir):
    """A tiny random BERT saved with the synthetic set's WordPiece tokenizer."""
    import shutil

    folder = tmp_path_factory.mktemp("bert") / "tiny-bert"
    shutil.copytree(synthetic_dir / "tokenizer", folder)
    vocab = len(transformers.AutoTokenizer.from_pretrained(folder))
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64)
    transformers.BertModel(config).save_pretrained(folder)
    return folder


def test_bleu2_matches_a_hand_computation():
    cand, ref = ["the heart is normal"], ["the heart size is normal"]
    # unigram matches 4/4, bigram matches 2/3 ("the heart", "is normal"); brevity penalty exp(1 - 5/4)
    expected = np.exp(1 - 5 / 4) * np.sqrt(1.0 * 2 / 3)
    assert rg.bleu2(cand, ref) == pytest.approx(expected, abs=1e-4)
    assert rg.bleu2(REF, REF) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="as many"):
        rg.bleu2(GEN, REF[:1])


def test_bertscore_recall_against_direct_token_matching(bert_dir):
    tokenizer = transformers.AutoTokenizer.from_pretrained(bert_dir)
    model = transformers.AutoModel.from_pretrained(bert_dir).eval()

    def states(text):
        t = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            h = model(**t).last_hidden_state[0, 1:-1]  # drop [CLS] and [SEP]
        return torch.nn.functional.normalize(h, dim=-1).numpy()

    expected = np.mean([(states(r) @ states(c).T).max(1).mean() for c, r in zip(GEN, REF)])
    assert rg.bertscore_recall(GEN, REF, bert_dir) == pytest.approx(expected, abs=1e-5)
    assert rg.bertscore_recall(REF, REF, bert_dir) == pytest.approx(1.0, abs=1e-5)


def test_cls_similarity_and_chexbert_conversion(bert_dir, tmp_path):
    tokenizer = transformers.AutoTokenizer.from_pretrained(bert_dir)
    model = transformers.AutoModel.from_pretrained(bert_dir).eval()
    with torch.no_grad():
        cls = [torch.nn.functional.normalize(model(**tokenizer(t, return_tensors="pt")).last_hidden_state[0, 0], dim=0)
               for t in GEN + REF]  # fmt: skip
    expected = float(np.mean([(cls[i] @ cls[i + 2]).item() for i in range(2)]))
    assert rg.cls_similarity(GEN, REF, bert_dir) == pytest.approx(expected, abs=1e-5)
    # CheXbert's checkpoint layout: {"model_state_dict": {"module.bert.<name>": ..., "module.linear_heads.0.weight": ...}}
    state = {f"module.bert.{k}": v for k, v in model.state_dict().items()} | {"module.linear_heads.0.weight": torch.zeros(4, 32)}
    torch.save({"model_state_dict": state}, tmp_path / "chexbert.pth")
    folder = rg.chexbert_folder(tmp_path / "chexbert.pth", bert_dir, tmp_path / "chexbert")
    assert rg.cls_similarity(GEN, REF, folder) == pytest.approx(expected, abs=1e-5)


def test_sentence_similarity_with_a_local_sentence_transformer(bert_dir, tmp_path):
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(bert_dir), device="cpu")  # a plain BERT folder: mean pooling added
    model.save(str(tmp_path / "mpnet"))
    a = model.encode(GEN, normalize_embeddings=True)
    b = model.encode(REF, normalize_embeddings=True)
    assert rg.sentence_similarity(GEN, REF, tmp_path / "mpnet") == pytest.approx(float(np.mean((a * b).sum(1))), abs=1e-5)


def test_missing_folder_errors_name_the_folder_and_option(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing-mpnet.*--mpnet-model"):
        rg.sentence_similarity(GEN, REF, tmp_path / "missing-mpnet")
    with pytest.raises(FileNotFoundError, match="--chexbert-model"):
        rg.cls_similarity(GEN, REF, None)


def test_cli_writes_table3(bert_dir, tmp_path):
    st = pytest.importorskip("sentence_transformers")
    st.SentenceTransformer(str(bert_dir), device="cpu").save(str(tmp_path / "mpnet"))
    for name, gen in (("CLIP", GEN), ("eCLIP", REF)):
        lines = [json.dumps({"id": i, "reports": [], "generated": g, "true_report": r}) for i, (g, r) in enumerate(zip(gen, REF))]
        (tmp_path / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    rows = rg.main(["--run", f"CLIP={tmp_path / 'CLIP.jsonl'}", "--run", f"eCLIP={tmp_path / 'eCLIP.jsonl'}",
                    "--bertscore-model", str(bert_dir), "--mpnet-model", str(tmp_path / "mpnet"),
                    "--chexbert-model", str(bert_dir), "--out", str(tmp_path / "table3")])  # fmt: skip
    assert rows["eCLIP"]["BL-2"] == pytest.approx(1.0) and rows["CLIP"]["BL-2"] < 1
    table = (tmp_path / "table3.md").read_text()
    assert table.splitlines()[0] == "| Model | BL-2 | B-R | S_emb | CB_emb |" and "| eCLIP | 1.000 |" in table


def test_paper_prompt_template_is_shipped_and_used():
    from medalign.evaluation.suite import parse_task
    from medalign.paths import resolve_config

    template = resolve_config("prompts/report_generation_rag.txt", (".txt",)).read_text()
    assert "{reports}" in template and template.format(reports="- a\n- b").count("- ") == 2
    task = parse_task({"type": "report_retrieval", "prompt": "prompts/report_generation_rag.txt"})
    assert task.prompt == "prompts/report_generation_rag.txt"
