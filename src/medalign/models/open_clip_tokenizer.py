"""`OpenClipTokenizer`: an open_clip tokenizer behind the Hugging Face call the data pipeline makes.

`Collator`, `encode_prompts` and the evaluation encoders call
``tokenizer(texts, padding=..., truncation=True, max_length=L, return_tensors="pt")`` and read
``input_ids`` / ``attention_mask``; ``len(tokenizer)`` is linked to the model as ``vocab_size``.
Selected with ``data.tokenizer: open_clip:<spec>`` (`medalign.data.tokenizer.load_tokenizer`).
"""

from __future__ import annotations

from typing import Any

import torch

PREFIX = "open_clip:"


class OpenClipTokenizer:
    """Wraps an open_clip tokenizer; ids always span the model's context length.

    A fixed-length CLIP text tower needs exactly ``context_length`` positions, so
    ``max_length`` only truncates (the end-of-text token is kept) and the rest is padded,
    as open_clip itself pads.

    Args:
        tokenizer: an open_clip ``SimpleTokenizer`` / ``HFTokenizer`` / ``SigLipTokenizer``.
        name: the spec it was loaded from (for messages and cache settings).
    """

    open_clip = True  # marks a tokenizer an `OpenClipDualEncoder` accepts

    def __init__(self, tokenizer: Any, name: str = "open_clip") -> None:
        self.tokenizer = tokenizer
        self.name = name
        self.context_length = int(tokenizer.context_length)
        inner = getattr(tokenizer, "tokenizer", None)  # the HF tokenizer of HF / SigLIP tokenizers
        self.pad_token_id = int(getattr(inner, "pad_token_id", None) or 0)
        self.eot_token_id = getattr(tokenizer, "eot_token_id", None)  # SimpleTokenizer only

    @classmethod
    def from_spec(cls, spec: str) -> "OpenClipTokenizer":
        """Load from ``open_clip:<architecture | config JSON | directory>`` (or the bare spec)."""
        from medalign.models.open_clip_tower import create_open_clip_tokenizer

        spec = str(spec).removeprefix(PREFIX)
        return cls(create_open_clip_tokenizer(spec), name=spec)

    def __len__(self) -> int:
        inner = getattr(self.tokenizer, "tokenizer", None)
        return int(getattr(self.tokenizer, "vocab_size", None) or len(inner))

    def get_vocab(self) -> dict[str, int]:
        """Token → id (hashed into the evaluation cache settings)."""
        encoder = getattr(self.tokenizer, "encoder", None)
        return dict(encoder) if encoder is not None else self.tokenizer.tokenizer.get_vocab()

    def __call__(self, texts: str | list[str], max_length: int | None = None, **_: Any) -> dict[str, torch.Tensor]:
        """Token ids and mask, each (B, context_length); HF padding / truncation keywords are accepted and unused.

        Args:
            texts: one string or a list.
            max_length: keep at most this many tokens (≤ the context length) before padding.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        length = min(max_length or self.context_length, self.context_length)
        ids = self.tokenizer(texts, context_length=length).long()  # (B, length)
        if length < self.context_length:
            ids = torch.nn.functional.pad(ids, (0, self.context_length - length), value=self.pad_token_id)
        if self.eot_token_id is not None:  # CLIP BPE: real tokens run up to the first end-of-text
            positions = torch.arange(ids.shape[1])
            last = torch.where(ids == self.eot_token_id, positions, ids.shape[1]).min(1).values  # (B,)
            mask = positions.unsqueeze(0) <= last.unsqueeze(1)
        else:
            mask = ids != self.pad_token_id
        return {"input_ids": ids, "attention_mask": mask.long()}

    def __repr__(self) -> str:
        return f"OpenClipTokenizer({self.name!r}, context_length={self.context_length})"
