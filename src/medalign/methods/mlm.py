"""Masked-language modelling on reports: BERT's token masking and head (Devlin et al., NAACL 2019, §3.1).

Used as an optional unimodal term next to the image–text loss (the benchmark's question ii).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medalign.methods.base import Objective, StepContext, check_weight
from medalign.models import DualEncoder

MLM_MODEL_TYPES = ("bert", "roberta")  # configs with the fields `BertOnlyMLMHead` reads

IGNORE = -100  # cross-entropy's ignore_index: positions that are not predicted


def mask_tokens(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    special_ids: list[int],
    mask_token_id: int,
    vocab_size: int,
    generator: torch.Generator,
    probability: float = 0.15,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: pick `probability` of the real, non-special tokens; 80 % → [MASK], 10 % → random, 10 % kept.

    Args:
        input_ids: (B, L) token ids.
        attention_mask: (B, L), nonzero at real tokens.
        special_ids: ids never picked ([CLS], [SEP], [PAD], ...).
        mask_token_id: the tokenizer's mask token.
        vocab_size: size of the random-replacement range.
        generator: CPU generator of the draws (seeded per step by the caller).
        probability: share of eligible tokens predicted.

    Returns:
        ``masked_ids`` (B, L) and ``labels`` (B, L): the original id at picked positions, −100 elsewhere.
    """
    if not 0 < probability < 1:
        raise ValueError(f"MLM.probability must be in (0, 1), got {probability}")
    eligible = attention_mask.bool() & ~torch.isin(input_ids, torch.tensor(special_ids, device=input_ids.device))
    u = torch.rand((3, *input_ids.shape), generator=generator).to(input_ids.device)  # (3, B, L)
    picked = eligible & (u[0] < probability)
    labels = torch.where(picked, input_ids, torch.full_like(input_ids, IGNORE))
    replace = picked & (u[1] < 0.8)
    randomise = picked & ~replace & (u[2] < 0.5)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator).to(input_ids.device)
    masked = torch.where(replace, torch.full_like(input_ids, mask_token_id), input_ids)
    return torch.where(randomise, random_ids, masked), labels


def create_mlm_head(text_model: nn.Module) -> nn.Module:
    """A BERT MLM head (transform + decoder) sized for a Hugging Face BERT-family encoder.

    Raises:
        ValueError: a tower that is not BERT-family (e.g. an open_clip text transformer).
    """
    config = getattr(text_model, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type not in MLM_MODEL_TYPES:
        raise ValueError(
            f"the MLM objective needs a BERT-family text tower ({list(MLM_MODEL_TYPES)}), got "
            f"{model_type or type(text_model).__name__}; remove the objective"
        )
    from transformers.models.bert.modeling_bert import BertOnlyMLMHead

    return BertOnlyMLMHead(config)


class MLM(Objective):
    """``mlm_loss``: BERT masked-token cross-entropy on the batch's reports (BERT-family towers only).

    Args:
        weight: weight of the term next to the pair loss.
        probability: share of report tokens masked (BERT: 0.15).
        seed: seed of the masking draws (a function of (seed, step, rank): resume-safe); None (default): the run's ``seed_everything``.
    """

    legacy_state = {"mlm_head.": "head."}

    def __init__(self, weight: float = 1.0, probability: float = 0.15, seed: int | None = None) -> None:
        super().__init__()
        check_weight(weight, "MLM.weight")
        if not 0 < probability < 1:
            raise ValueError(f"MLM.probability must be in (0, 1), got {probability}")
        self.weight, self.probability, self.seed = weight, probability, seed
        self.head: nn.Module | None = None
        self._tokens: tuple[int, list[int], int] | None = None  # mask id, special ids, vocab size

    def setup(self, model: nn.Module) -> None:
        if not isinstance(model, DualEncoder):
            raise ValueError("the MLM objective needs the timm/BERT towers, not preset: open_clip; remove the objective")
        self.head = create_mlm_head(model.text_encoder.model)

    def set_tokenizer(self, tokenizer: Any) -> None:
        if getattr(tokenizer, "mask_token_id", None) is None:
            raise ValueError(f"the MLM objective needs a tokenizer with a mask token; {type(tokenizer).__name__} has none")
        self._tokens = (int(tokenizer.mask_token_id), list(tokenizer.all_special_ids), len(tokenizer))

    def terms(self, batch: dict[str, Any], out: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        if self._tokens is None:
            raise RuntimeError("MLM: call set_tokenizer(tokenizer) first (the module's setup does)")
        mask_id, special, vocab = self._tokens
        ids, attention = batch["input_ids"], batch["attention_mask"]
        masked, labels = mask_tokens(ids, attention, special, mask_id, vocab, ctx.generator(self.seed, 2), self.probability)
        hidden = ctx.model.text_encoder.model(input_ids=masked, attention_mask=attention).last_hidden_state  # (B, L, H)
        logits = self.head(hidden)  # (B, L, V)
        if not (labels != IGNORE).any():
            return {"mlm_loss": logits.sum() * 0.0}
        loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE)
        return {"mlm_loss": self.weight * loss}
