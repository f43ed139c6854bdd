"""`medalign tokenizer MANIFEST --out DIR`: a WordPiece tokenizer built from your own reports.

For a text tower trained from scratch on your data (no ClinicalBERT folder at hand). The
vocabulary is built deterministically from the train split's reports only (validation and test
text never shapes it): the same manifest gives the same files on every machine. Train with
``--data.tokenizer DIR`` (the default is ``<manifest folder>/tokenizer``, where ``--out`` goes
unless given).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from medalign.commands.flags import HelpFormatter


def run(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="medalign tokenizer", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("manifest", help="manifest (CSV or Parquet) in the standard format")
    parser.add_argument("--out", default=None,
                        help="output folder (default: <manifest folder>/tokenizer, where training looks by default)")
    parser.add_argument("--vocab-size", type=int, default=8000,
                        help="vocabulary size: special tokens, characters, then the most frequent words (default 8000)")
    parser.add_argument("--split", default="train", choices=("train", "val", "test"),
                        help="split whose reports build the vocabulary (default train)")
    parser.add_argument("--force", action="store_true", help="replace an existing tokenizer folder")
    args = parser.parse_args(argv)
    if args.vocab_size < 100:
        parser.error(f"--vocab-size must be at least 100, got {args.vocab_size}")

    from medalign.data.manifest import read_manifest
    from medalign.data.tokenizer import train_wordpiece_tokenizer

    manifest = read_manifest(args.manifest, check_files=False, allow_outside_paths=True)  # reports only: no image is read
    texts = manifest.split(args.split).frame["text"].tolist()
    if not texts:
        raise SystemExit(f"medalign tokenizer: {args.manifest} has no {args.split!r} rows to build a vocabulary from")
    out = Path(args.out) if args.out else manifest.root / "tokenizer"
    if out.exists() and any(out.iterdir()) and not args.force:
        raise SystemExit(f"medalign tokenizer: {out} already holds files; pass --force to replace the tokenizer there")
    tokenizer = train_wordpiece_tokenizer(texts, out, vocab_size=args.vocab_size)
    print(f"wrote {out} ({len(tokenizer)} tokens from {len(texts)} {args.split} reports); "
          f"{_coverage(tokenizer, texts):.1%} of their words are whole tokens")
    print(f"train with: medalign fit --config <your config> --data.manifest {args.manifest} --data.tokenizer {out}")


def _coverage(tokenizer, texts: list[str], sample: int = 2000) -> float:
    """Share of words (first `sample` reports) that are one vocabulary entry, not spelled out in pieces."""
    words = [w for text in texts[:sample] for w in tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str(
        tokenizer.backend_tokenizer.normalizer.normalize_str(text))]
    vocab = tokenizer.get_vocab()
    return sum(word in vocab for word, _ in words) / max(len(words), 1)
