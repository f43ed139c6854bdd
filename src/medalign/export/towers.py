"""Each medalign tower as open_clip expresses it: a config section plus weights under open_clip's names.

open_clip builds a ``CustomTextCLIP`` from ``model_cfg`` (``open_clip/model.py``):

* image: ``TimmModel`` — ``timm.create_model(timm_model_name)`` with no other keyword
  arguments, the network's own pooling (``timm_pool``) and a bias-free linear ``head.proj``;
  or open_clip's own ``VisionTransformer`` (conv patch embedding without bias, class token,
  ``ln_pre``, ``nn.MultiheadAttention`` blocks, ``ln_post``, token pooling, ``proj`` matrix).
* text: ``HFTextEncoder`` — ``AutoConfig.from_pretrained(hf_model_name)`` + ``AutoModel.from_config``
  without the BERT pooler, a pooler reading ``last_hidden_state`` and a bias-free linear ``proj``.

A timm tower built from its name alone maps 1:1 onto ``TimmModel``. A timm ViT built with
shape keyword arguments (the ``tiny`` preset) cannot be named to timm through open_clip, so it
is rewritten as open_clip's ``VisionTransformer`` (`vit_as_open_clip`): same computation, the
patch-embedding bias folded into the patch positions' embeddings. Anything else raises
`ExportError` naming the part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

# timm.create_model keywords that change training only (dropout, stochastic depth), not the eval forward.
TRAINING_ONLY_KWARGS = frozenset(
    {"drop_rate", "drop_path_rate", "attn_drop_rate", "proj_drop_rate", "pos_drop_rate", "patch_drop_rate"}
)
# medalign's text pooling → open_clip's pooler reading last_hidden_state (never the BERT pooler).
HF_POOLERS = {"cls": "cls_last_hidden_state_pooler", "mean": "mean_pooler"}


class ExportError(ValueError):
    """A checkpoint part open_clip's config cannot express (the message names the part)."""


@dataclass
class Tower:
    """One tower in open_clip's terms.

    Attributes:
        config: the ``vision_cfg`` or ``text_cfg`` section of ``model_cfg``.
        state_dict: weights under open_clip's names (``visual.*`` or ``text.*``).
        description: one line for the model card.
    """

    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor] = field(repr=False)
    description: str


def _prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}{k}": v for k, v in state.items()}


def image_tower(backbone: nn.Module, projection: torch.Tensor, name: str, kwargs: dict[str, Any], image_size: int) -> Tower:
    """The image tower (a timm backbone with ``num_classes=0`` + ``image_projection``).

    Args:
        backbone: the timm model (``DualEncoder.image_encoder.backbone``).
        projection: ``image_projection.weight`` (D, F).
        name: its timm name.
        kwargs: the extra `timm.create_model` keywords it was built with.
        image_size: the side length it was trained on.

    Raises:
        ExportError: shape keywords on anything but a plain timm ViT.
    """
    shaping = sorted(set(kwargs) - TRAINING_ONLY_KWARGS)
    if not shaping:  # timm rebuilds exactly this network from its name
        pool = getattr(backbone, "global_pool", "")
        config = {"timm_model_name": name, "timm_model_pretrained": False, "timm_pool": pool if isinstance(pool, str) else "",
                  "timm_proj": "linear", "timm_proj_bias": False, "image_size": image_size}
        state = _prefixed("visual.trunk.", backbone.state_dict()) | {"visual.head.proj.weight": projection}
        return Tower(config, state, f"timm `{name}` (open_clip `TimmModel`, pool `{config['timm_pool'] or 'default'}`)")
    from timm.models.vision_transformer import VisionTransformer

    if type(backbone) is not VisionTransformer:
        raise ExportError(
            f"image tower: timm model {name!r} ({type(backbone).__name__}) was built with the keyword arguments "
            f"{ {k: kwargs[k] for k in shaping} }; open_clip passes no keyword arguments to timm.create_model, and only "
            "a plain timm VisionTransformer can be rewritten as open_clip's own ViT: train with a timm name that "
            "needs no image_kwargs to export this tower"
        )
    tower = vit_as_open_clip(backbone, projection)
    tower.description = f"timm `{name}` with {dict((k, kwargs[k]) for k in shaping)}, as " + tower.description
    return tower


def _vit_problems(vit: nn.Module) -> list[str]:
    """Why a timm VisionTransformer is not open_clip's ViT computation (empty: it is)."""
    from timm.layers import Mlp, PatchEmbed
    from timm.models.vision_transformer import Attention, Block

    identity = lambda m: isinstance(m, nn.Identity)  # noqa: E731
    problems = []
    pe = vit.patch_embed
    if vit.cls_token is None or vit.num_prefix_tokens != 1:
        problems.append(f"prefix tokens: open_clip has exactly one class token (found {vit.num_prefix_tokens}, register tokens included)")
    if vit.no_embed_class or vit.pos_embed is None or getattr(vit, "dynamic_img_size", False):
        problems.append("position embedding: open_clip needs a learned one that covers the class token, fixed image size")
    if vit.global_pool != "token" or not identity(vit.fc_norm) or getattr(vit, "attn_pool", None) is not None:
        problems.append(f"pooling: open_clip pools the class token after the final norm (found global_pool={vit.global_pool!r})")
    if type(pe) is not PatchEmbed or not identity(pe.norm) or not pe.flatten or pe.proj.in_channels != 3:
        problems.append("patch embedding: open_clip has a plain 3-channel conv without a norm")
    elif pe.proj.kernel_size != pe.proj.stride or len(set(pe.proj.kernel_size)) != 1 or len(set(pe.img_size)) != 1:
        problems.append(f"patch embedding: open_clip needs square, non-overlapping patches on a square image ({pe.proj})")
    norms = [vit.norm] + ([] if identity(vit.norm_pre) else [vit.norm_pre])
    for i, block in enumerate(vit.blocks):
        where = f"block {i}"
        if type(block) is not Block or type(block.attn) is not Attention or type(block.mlp) is not Mlp:
            problems.append(f"{where}: {type(block).__name__} is not timm's plain pre-norm Block")
            continue
        parts = {"layer scale": (block.ls1, block.ls2), "q/k norm": (block.attn.q_norm, block.attn.k_norm),
                 "attention norm": (getattr(block.attn, "norm", nn.Identity()),), "MLP norm": (block.mlp.norm,)}
        problems += [f"{where}: {part} has no open_clip equivalent" for part, mods in parts.items() if not all(map(identity, mods))]
        act = block.mlp.act
        if not (isinstance(act, nn.GELU) and act.approximate == "none"):
            problems.append(f"{where}: MLP activation {act} (open_clip uses exact nn.GELU)")
        if block.attn.proj.bias is None or block.mlp.fc1.bias is None or block.mlp.fc2.bias is None:
            problems.append(f"{where}: open_clip's attention output and MLP layers have biases")
        norms += [block.norm1, block.norm2]
    if not all(isinstance(n, nn.LayerNorm) and n.elementwise_affine and n.bias is not None for n in norms):
        problems.append("norms: open_clip uses affine LayerNorm with bias everywhere")
    elif len({n.eps for n in norms}) != 1:
        problems.append(f"norms: open_clip uses one LayerNorm eps, found {sorted({n.eps for n in norms})}")
    width = vit.embed_dim
    hidden = {b.mlp.fc1.out_features for b in vit.blocks if type(b) is Block}
    heads = {b.attn.num_heads for b in vit.blocks if type(b) is Block}
    if len(hidden) > 1 or len(heads) > 1 or any(int(width * (h / width)) != h for h in hidden):
        problems.append(f"blocks: open_clip needs one MLP width and head count (found {sorted(hidden)}, {sorted(heads)})")
    return problems


def vit_as_open_clip(vit: nn.Module, projection: torch.Tensor) -> Tower:
    """A timm ``VisionTransformer`` (pooled class token) as open_clip's ``VisionTransformer``.

    The computation is the same; two weights change form: timm's patch-embedding bias b is
    added to every patch token before the position embedding, so it moves into rows 1.. of
    ``positional_embedding`` (open_clip's ``conv1`` has no bias); ``proj`` is the projection's
    transpose (``x @ proj``).

    Raises:
        ExportError: the ViT uses a piece open_clip's ViT lacks (listed).
    """
    problems = _vit_problems(vit)
    if problems:
        raise ExportError("image tower: this timm ViT cannot be expressed as open_clip's ViT: " + "; ".join(problems))
    blocks = list(vit.blocks)
    width, heads = vit.embed_dim, blocks[0].attn.num_heads
    conv = vit.patch_embed.proj
    config = {
        "image_size": int(vit.patch_embed.img_size[0]),
        "patch_size": int(conv.kernel_size[0]),
        "width": width,
        "layers": len(blocks),
        "head_width": width // heads,
        "mlp_ratio": blocks[0].mlp.fc1.out_features / width,
        "no_ln_pre": isinstance(vit.norm_pre, nn.Identity),
        "pool_type": "tok",
        "final_ln_after_pool": False,
        "norm_kwargs": {"eps": vit.norm.eps},  # timm 1e-6; open_clip's default would be 1e-5
    }
    with torch.no_grad():
        positions = vit.pos_embed[0].clone()  # (1 + N, W)
        if conv.bias is not None:
            positions[1:] += conv.bias  # conv(x) + b + pos == conv_nobias(x) + (pos + b)
        state = {
            "conv1.weight": conv.weight,
            "class_embedding": vit.cls_token[0, 0],
            "positional_embedding": positions,
            "ln_post.weight": vit.norm.weight,
            "ln_post.bias": vit.norm.bias,
            "proj": projection.t().contiguous(),  # (W, D)
        }
        if not config["no_ln_pre"]:
            state |= {"ln_pre.weight": vit.norm_pre.weight, "ln_pre.bias": vit.norm_pre.bias}
        for i, b in enumerate(blocks):
            qkv_bias = b.attn.qkv.bias if b.attn.qkv.bias is not None else torch.zeros(3 * width)
            state |= _prefixed(f"transformer.resblocks.{i}.", {
                "ln_1.weight": b.norm1.weight, "ln_1.bias": b.norm1.bias,
                "attn.in_proj_weight": b.attn.qkv.weight, "attn.in_proj_bias": qkv_bias,  # both stack [q; k; v]
                "attn.out_proj.weight": b.attn.proj.weight, "attn.out_proj.bias": b.attn.proj.bias,
                "ln_2.weight": b.norm2.weight, "ln_2.bias": b.norm2.bias,
                "mlp.c_fc.weight": b.mlp.fc1.weight, "mlp.c_fc.bias": b.mlp.fc1.bias,
                "mlp.c_proj.weight": b.mlp.fc2.weight, "mlp.c_proj.bias": b.mlp.fc2.bias,
            })
    description = (f"open_clip `VisionTransformer` ({config['layers']} layers, width {width}, {heads} heads, "
                   f"patch {config['patch_size']}, LayerNorm eps {config['norm_kwargs']['eps']:g})")
    return Tower(config, _prefixed("visual.", state), description)


def text_tower(hf_model: nn.Module, projection: torch.Tensor, pooling: str, context_length: int, source: str) -> Tower:
    """The text tower (a Hugging Face encoder + ``text_projection``) as ``HFTextEncoder``.

    Args:
        hf_model: ``DualEncoder.text_encoder.model`` (its pooler, if any, is unused).
        projection: ``text_projection.weight`` (D, H).
        pooling: ``cls`` or ``mean``.
        context_length: token positions per text (the data's ``max_length``).
        source: what ``hf_model_name`` / ``hf_tokenizer_name`` say: the export folder, or a hub id.

    Raises:
        ExportError: a model type open_clip's ``HFTextEncoder`` does not know, or an encoder–decoder.
    """
    from open_clip.hf_configs import arch_dict

    config = hf_model.config
    if config.model_type not in arch_dict or getattr(config, "is_encoder_decoder", False):
        raise ExportError(
            f"text tower: Hugging Face model type {config.model_type!r} is not one open_clip's HFTextEncoder builds "
            f"as an encoder (it knows {sorted(arch_dict)})"
        )
    if pooling not in HF_POOLERS:
        raise ExportError(f"text tower: pooling {pooling!r} has no open_clip pooler (known: {sorted(HF_POOLERS)})")
    text_cfg = {"hf_model_name": source, "hf_tokenizer_name": source, "hf_model_pretrained": False,
                "hf_proj_type": "linear", "hf_pooler_type": HF_POOLERS[pooling], "context_length": int(context_length)}
    state = {k: v for k, v in hf_model.state_dict().items() if not k.startswith("pooler.")}
    state = _prefixed("text.transformer.", state) | {"text.proj.weight": projection}
    description = (f"Hugging Face `{type(hf_model).__name__}` ({config.model_type}, {config.num_hidden_layers} layers, "
                   f"width {config.hidden_size}), {pooling} pooling (open_clip `HFTextEncoder`)")
    return Tower(text_cfg, state, description)
