"""Build a BERT-style WordPiece tokenizer offline from report text, and load saved tokenizers.

Used for the embedded synthetic dataset, whose reports ClinicalBERT's vocabulary cannot
be fetched for. The tokenizer lowercases, splits on whitespace and punctuation like BERT,
and wraps every text as `[CLS] ... [SEP]`.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def train_wordpiece_tokenizer(texts: Iterable[str], out_dir: str | Path, vocab_size: int = 2000):
    """Build a WordPiece tokenizer for `texts`, save it with `save_pretrained(out_dir)` and return it.

    The vocabulary is built deterministically — the same texts give the same files on every
    machine and run (Hugging Face's `WordPieceTrainer` does not: it numbers continuing-subword
    pieces in hash-map order, which also changes its merge tie-breaks; huggingface/tokenizers
    #1794) — so a fresh clone reproduces the documented numbers. It holds the special tokens, every
    character of the corpus plus ASCII letters, digits and punctuation, each as a word start and as a
    ``##`` continuation (so a word outside the vocabulary is spelled out, never ``[UNK]``), then the
    corpus's words by frequency (ties alphabetical) up to `vocab_size`. Text is normalised and split like BERT (lower case, accents
    stripped, punctuation split off). The saved folder is checked by reloading it through
    `transformers.AutoTokenizer`.

    Returns:
        A `transformers` fast BERT tokenizer (`len(tokenizer)` = vocabulary size).
    """
    import transformers
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    characters = sorted({c for word in counts for c in word} | set(string.ascii_lowercase + string.digits + string.punctuation))
    vocab = [*SPECIAL_TOKENS, *characters, *(f"##{c}" for c in characters)]
    room = max(vocab_size - len(vocab), 0)
    known = set(vocab)
    words = [w for w, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0])) if w not in known]
    vocab += words[:room]
    tokenizer = Tokenizer(models.WordPiece({token: i for i, token in enumerate(vocab)}, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    # Wrap the built object; never `BertTokenizerFast(vocab_file=...)`, which in
    # transformers 5.x silently builds a 5-token vocabulary.
    wrapped = transformers.BertTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wrapped.save_pretrained(out)
    _check_saved(out, tokenizer.get_vocab_size())
    return wrapped


def _check_saved(path: Path, expected_size: int) -> None:
    reloaded = load_tokenizer(path)
    ids = reloaded("no pleural effusion.")["input_ids"]
    if len(reloaded) != expected_size or ids[0] != reloaded.cls_token_id or ids[-1] != reloaded.sep_token_id:
        raise RuntimeError(
            f"tokenizer saved in {path} does not reload as trained: {len(reloaded)} tokens "
            f"(expected {expected_size}), 'no pleural effusion.' -> {reloaded.convert_ids_to_tokens(ids)}"
        )


def load_tokenizer(path: str | Path):
    """Load a tokenizer folder saved with `save_pretrained` (e.g. `<synthetic>/tokenizer`).

    ``open_clip:<architecture | config JSON | directory>`` loads an open_clip model's own
    tokenizer instead (`medalign.models.open_clip_tokenizer.OpenClipTokenizer`).

    Raises:
        FileNotFoundError: `path` is not a folder (e.g. a hub id: nothing is downloaded).
    """
    import transformers

    if str(path).startswith("open_clip:"):
        from medalign.models.open_clip_tokenizer import OpenClipTokenizer

        return OpenClipTokenizer.from_spec(str(path))
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"tokenizer folder {path} does not exist: build one from your manifest's reports with "
            "`medalign tokenizer MANIFEST --out DIR`, or, for a pretrained text tower, pass its local model folder "
            "(--data.tokenizer /path/to/Bio_ClinicalBERT); hub ids are not downloaded"
        )
    return transformers.AutoTokenizer.from_pretrained(str(path))
