"""The embedded tokenizer: deterministic across processes, BERT-style, never [UNK] on corpus characters."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from medalign.data.tokenizer import load_tokenizer, train_wordpiece_tokenizer

SRC = Path(__file__).resolve().parents[2] / "src"
TEXTS = ["No pleural effusion.", "Mild cardiomegaly. No pleural effusion.", "Small left pleural effusion; no pneumothorax."]
BUILD = """
import sys
from medalign.data.tokenizer import train_wordpiece_tokenizer
train_wordpiece_tokenizer({texts!r} * 50, sys.argv[1], vocab_size=60)
"""


def test_same_texts_give_byte_identical_files_in_separate_processes(tmp_path):
    # Hugging Face's WordPieceTrainer numbers pieces in hash-map order (tokenizers#1794):
    # each process has its own hash seed, so this is where a non-deterministic build shows.
    # Three processes: this one and two fresh interpreters (each start imports transformers).
    train_wordpiece_tokenizer(TEXTS * 50, tmp_path / "t0", vocab_size=60)
    for i, seed in enumerate(("1", "2"), start=1):
        env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", BUILD.format(texts=TEXTS), str(tmp_path / f"t{i}")], env=env, check=True, timeout=120)
    files = [(tmp_path / f"t{i}" / "tokenizer.json").read_bytes() for i in range(3)]
    assert files[0] == files[1] == files[2]


def test_vocabulary_and_tokenisation(tmp_path):
    tokenizer = train_wordpiece_tokenizer(TEXTS, tmp_path, vocab_size=2000)
    vocab = tokenizer.get_vocab()
    assert [vocab[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 1, 2, 3, 4]
    # "pleural" / "effusion" (3 times each) come before "pneumothorax" (once) among the words
    assert vocab["pleural"] < vocab["pneumothorax"] and vocab["effusion"] < vocab["small"]
    assert tokenizer.tokenize("No PLEURAL effusion, zebra.") == ["no", "pleural", "effusion", ",", "z", "##e", "##b", "##r", "##a", "."]
    ids = tokenizer("no pleural effusion.")["input_ids"]
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id and tokenizer.unk_token_id not in ids
    assert load_tokenizer(tmp_path).get_vocab() == vocab  # reloads as built
    base = 5 + 2 * 68  # specials + 68 characters (corpus ∪ ASCII letters, digits, punctuation) as start and ##piece
    small = train_wordpiece_tokenizer(TEXTS, tmp_path / "small", vocab_size=base + 4)  # room for 4 words
    assert len(small) == base + 4
    assert [t for t in ("effusion", "no", "pleural", "cardiomegaly", "left") if t in small.get_vocab()] == ["effusion", "no", "pleural", "cardiomegaly"]
    assert small.tokenize("pneumothorax")[:2] == ["p", "##n"]  # cut by the budget: spelled out
