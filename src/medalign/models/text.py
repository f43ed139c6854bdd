"""Text tower: a BERT-family encoder from a config (random init) or a local directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, BertConfig, BertModel

Pooling = Literal["cls", "mean"]


class TextEncoder(nn.Module):
    """Encodes token ids to one vector per text with CLS or masked-mean pooling.

    Args:
        vocab_size: tokenizer size; required for a randomly initialised tower and checked
            against a pretrained one.
        config: `BertConfig` keyword arguments for a randomly initialised tower.
        pretrained_dir: local Hugging Face model directory (config.json + weights), e.g. a
            downloaded Bio_ClinicalBERT. Hub ids are refused: this project runs offline.
        pooling: ``cls`` (the [CLS] token, as in the eCLIP paper) or ``mean`` over real tokens.
        gradient_checkpointing: trade compute for activation memory.
    """

    def __init__(
        self,
        vocab_size: int | None = None,
        config: dict[str, Any] | None = None,
        pretrained_dir: str | None = None,
        pooling: Pooling = "cls",
        gradient_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"text pooling must be 'cls' or 'mean', got {pooling!r}")
        self.pooling = pooling
        if pretrained_dir is not None:
            self.model = _load_local(pretrained_dir)
            expected = self.model.config.vocab_size
            if vocab_size is not None and vocab_size > expected:
                raise ValueError(
                    f"the tokenizer has {vocab_size} tokens but the text model in {pretrained_dir} has only "
                    f"{expected} embeddings: use that model's own tokenizer (--data.tokenizer {pretrained_dir})"
                )
        else:
            if vocab_size is None:
                raise ValueError("a randomly initialised text tower needs vocab_size (the tokenizer's size)")
            self.model = BertModel(BertConfig(vocab_size=vocab_size, **(config or {})), add_pooling_layer=False)
        if gradient_checkpointing:  # transformers ≥ 5 renamed it; older releases have only the first name
            enable = getattr(self.model, "activation_checkpointing_enable", None) or self.model.gradient_checkpointing_enable
            enable()
        self.num_features: int = self.model.config.hidden_size

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Map token ids (B, L) and their mask (B, L) to pooled features (B, hidden)."""
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, L, H)
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)


def _load_local(path: str) -> nn.Module:
    """Load a transformers encoder from a local directory, never from a hub, in train mode."""
    directory = Path(path)
    if not (directory / "config.json").is_file():
        raise FileNotFoundError(
            f"text model directory {path!r} has no config.json; medalign loads text towers from local "
            "directories only, hub ids are not downloaded: download e.g. Bio_ClinicalBERT elsewhere, copy the folder "
            "here and pass --model.model.text_model /path/to/folder --data.tokenizer /path/to/folder"
        )
    config = AutoConfig.from_pretrained(directory, local_files_only=True)
    model = AutoModel.from_pretrained(directory, config=config, local_files_only=True)
    # Sentence-transformers and BERT checkpoints may carry a pooler we never use.
    if getattr(model, "pooler", None) is not None:
        model.pooler = None
    # `from_pretrained` returns the model in eval mode (dropout off); Lightning keeps a module's
    # mode at the start of `fit`, so without this the tower would train without its dropout.
    return model.train()
