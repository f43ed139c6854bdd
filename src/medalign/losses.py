"""Contrastive losses. Tensors in, tensors out; no Lightning, no process groups.

Distributed training passes gathered embeddings in (`contrastive_loss`) so the same code
serves one process and many.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _check_pair(image_emb: torch.Tensor, text_emb: torch.Tensor, name: str = "") -> None:
    if image_emb.ndim != 2 or image_emb.shape != text_emb.shape:
        raise ValueError(
            f"{name}image and text embeddings must both be (N, D) with the same shape, "
            f"got {tuple(image_emb.shape)} and {tuple(text_emb.shape)}"
        )


def scaled_similarity(scale: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``scale · a @ bᵀ`` (M, N) from (M, D) and (N, D) in float32 (or float64), also inside an autocast region.

    Under ``bf16-mixed`` the matmul would otherwise run in bfloat16 (8 significant bits):
    cosine similarities carry errors of ~2⁻⁹ and, at logit scale 100, logits of ~0.2–0.4 —
    the size of the differences InfoNCE learns from. The (M, N) product is cheap in float32.
    """
    dtype = torch.promote_types(torch.promote_types(a.dtype, b.dtype), torch.float32)  # never below float32
    with torch.autocast(a.device.type, enabled=False):
        return scale.to(dtype) * a.to(dtype) @ b.to(dtype).T


def contrastive_loss(
    image_local: torch.Tensor,
    text_local: torch.Tensor,
    image_all: torch.Tensor,
    text_all: torch.Tensor,
    logit_scale: torch.Tensor,
    offset: int = 0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE of local rows against global columns (CLIP, Radford et al. 2021, Eq. 1).

    With DDP, each rank passes its own embeddings as `*_local`, all ranks' embeddings as
    `*_all` (gathered with gradients) and ``offset = rank * local_batch``. DDP's gradient
    averaging then yields the gradient of the loss on the global batch (open_clip's
    ``local_loss=True, gather_with_grad=True`` scheme).

    Args:
        image_local: this process's image embeddings (B, D), L2-normalised.
        text_local: this process's text embeddings (B, D), L2-normalised.
        image_all: image embeddings of the global batch (N, D), containing `image_local` at `offset`.
        text_all: text embeddings of the global batch (N, D), containing `text_local` at `offset`.
        logit_scale: exp of the learnable log inverse temperature, a scalar.
        offset: row of the global batch where this process's rows start.
        mask: optional bool (B, N); True at (i, j) removes global column j from local row i's
            negatives, in both directions (image i → text j and text i → image j); its logit
            becomes −inf. The positive (i, offset + i) must stay False. None = plain InfoNCE.
            Used by eCLIP to keep a report's second copy (same manifest row) from being its
            own negative (`medalign.methods.duplicate_mask.same_pair_mask`).

    Returns:
        The mean of the image→text and text→image cross-entropies, a scalar.
    """
    _check_pair(image_local, text_local, "local ")
    _check_pair(image_all, text_all, "global ")
    batch, total = image_local.shape[0], image_all.shape[0]
    if offset < 0 or offset + batch > total:
        raise ValueError(f"offset {offset} + local batch {batch} exceeds the global batch {total}")
    labels = torch.arange(offset, offset + batch, device=image_local.device)
    logits_per_image = scaled_similarity(logit_scale, image_local, text_all)  # (B, N), ≥ float32
    logits_per_text = scaled_similarity(logit_scale, text_local, image_all)  # (B, N), ≥ float32
    if mask is not None:
        if mask.shape != (batch, total) or mask.dtype != torch.bool:
            raise ValueError(f"mask must be a bool tensor of shape (B, N) = {(batch, total)}, got {mask.dtype} {tuple(mask.shape)}")
        if mask[torch.arange(batch, device=mask.device), labels.to(mask.device)].any():
            raise ValueError("mask removes a positive pair: mask[i, offset + i] must be False for every local row i")
        mask = mask.to(logits_per_image.device)
        logits_per_image = logits_per_image.masked_fill(mask, float("-inf"))
        logits_per_text = logits_per_text.masked_fill(mask, float("-inf"))
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE on one process: the i-th image and i-th text are the positive pair.

    Equals open_clip's ``ClipLoss()(image_emb, text_emb, logit_scale)``.

    Args:
        image_emb: L2-normalised image embeddings (N, D).
        text_emb: L2-normalised text embeddings (N, D).
        logit_scale: exp of the learnable log inverse temperature, a scalar.
    """
    return contrastive_loss(image_emb, text_emb, image_emb, text_emb, logit_scale)


# --------------------------------------------------------------------------------------------
# Alternatives to InfoNCE and gap-closing terms (issue 13). Appended here so `contrastive_loss`
# above stays untouched; all take L2-normalised (N, D) embeddings.
# --------------------------------------------------------------------------------------------


def siglip_contrastive_loss(
    image_local: torch.Tensor,
    text_all: torch.Tensor,
    logit_scale: torch.Tensor,
    logit_bias: torch.Tensor,
    offset: int = 0,
) -> torch.Tensor:
    """Sigmoid loss of local image rows against all texts (SigLIP, Zhai et al. ICCV 2023, Alg. 1).

    Every (image i, text j) pair is an independent binary problem: label +1 for j = i, −1
    otherwise, logit ``logit_scale · v_i·t_j + logit_bias``. The loss is the sum of
    −log σ(label · logit) over this rank's B rows × the N global columns, divided by B. With
    DDP (texts gathered with gradients, ``offset = rank · B``), the ranks' mean is the loss on
    the global batch, and DDP's gradient averaging gives its gradient — the gather variant of
    SigLIP's chunked exchange.

    Args:
        image_local: this process's image embeddings (B, D).
        text_all: text embeddings of the global batch (N, D); its rows ``offset … offset+B`` pair
            with `image_local`.
        logit_scale: the multiplier t = exp(t'), a scalar (SigLIP init 10).
        logit_bias: the learnable bias b, a scalar (SigLIP init −10).
        offset: row of the global batch where this process's rows start.
    """
    if image_local.ndim != 2 or text_all.ndim != 2 or image_local.shape[1] != text_all.shape[1]:
        raise ValueError(f"need (B, D) images and (N, D) texts, got {tuple(image_local.shape)} and {tuple(text_all.shape)}")
    batch = image_local.shape[0]
    if offset < 0 or offset + batch > text_all.shape[0]:
        raise ValueError(f"offset {offset} + local batch {batch} exceeds the global batch {text_all.shape[0]}")
    logits = scaled_similarity(logit_scale, image_local, text_all)  # (B, N), float32 or float64
    logits = logits + logit_bias.to(logits.dtype)
    labels = -torch.ones_like(logits)
    labels[torch.arange(batch, device=logits.device), torch.arange(offset, offset + batch, device=logits.device)] = 1.0
    return -F.logsigmoid(labels * logits).sum() / batch


def siglip_bias_init(num_texts: int) -> float:
    """SigLIP's bias at start for a batch comparing each image with `num_texts` texts: −log(num_texts).

    Zhai et al. 2023 (§3.3) start at b = −10 (with t = 10) at batch 32k "so that training starts
    close to the prior": with cos ≈ 0 at init, the N − 1 negatives of a row pull with Σσ(b) ≈
    N·e^b against the positive's 1 − σ(b) ≈ 1, balanced at b ≈ −log N (−log 32768 = −10.4). With
    the fixed −10 at batch 32, Adam moves the scalar bias by ≈ lr per step, so the towers reach
    the prior instead: every pair's cosine goes to c* with σ(t·c* − 10) = 1/(N − 1), c* ≈ 0.66 at
    t = 10, both modalities collapse onto one direction each and rank at chance (measured;
    docs/methods.md, "SigLIP at small batch").

    Args:
        num_texts: N, the global batch (texts each image is scored against), ≥ 2.
    """
    if num_texts < 2:
        raise ValueError(f"SigLIP needs at least 2 texts per image (one negative), got {num_texts}")
    return -math.log(num_texts)


def siglip_loss(
    image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor, logit_bias: torch.Tensor
) -> torch.Tensor:
    """SigLIP's sigmoid loss on one process: summed over the N×N pairs, divided by N.

    Equals open_clip's ``SigLipLoss()(image_emb, text_emb, logit_scale, logit_bias)``.

    Args:
        image_emb: L2-normalised image embeddings (N, D).
        text_emb: L2-normalised text embeddings (N, D).
        logit_scale: the multiplier (not its log), a scalar.
        logit_bias: the additive bias, a scalar.
    """
    _check_pair(image_emb, text_emb)
    return siglip_contrastive_loss(image_emb, text_emb, logit_scale, logit_bias)


def align_true_pairs_loss(image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    """Mean over pairs of ‖v_i − t_i‖² ("Closing the gap in multimodal medical representation alignment", 2026).

    Pulls each image onto its own report, which the InfoNCE objective alone leaves at a distance
    (the modality gap). Range [0, 4] for unit vectors.

    Args:
        image_emb: L2-normalised image embeddings (N, D).
        text_emb: L2-normalised text embeddings (N, D).
    """
    _check_pair(image_emb, text_emb)
    return (image_emb - text_emb).pow(2).sum(-1).mean()


def centroid_uniformity_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """log mean_{i≠j} exp(−t‖c_i − c_j‖²) of the pair centroids c_i = normalise((v_i + t_i)/2).

    The uniformity of Wang & Isola (ICML 2020) applied to the normalised centroids of the true
    pairs (the gap-closing paper, 2026): with the pairs aligned, it spreads them over the sphere
    instead of letting alignment collapse them. The squared distance is 2 − 2 c_i·c_j, which keeps
    the gradient finite for coincident centroids.

    Args:
        image_emb: L2-normalised image embeddings (N, D), N ≥ 2.
        text_emb: L2-normalised text embeddings (N, D).
        t: the kernel's sharpness (2 in Wang & Isola).
    """
    _check_pair(image_emb, text_emb)
    n = image_emb.shape[0]
    if n < 2:
        raise ValueError(f"centroid uniformity needs at least 2 pairs, got {n}")
    centroids = F.normalize((image_emb + text_emb) / 2, dim=-1)  # (N, D); antipodal pairs give 0 → normalize's eps
    sq_dist = (2 - 2 * centroids @ centroids.T).clamp_min(0)  # (N, N)
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=image_emb.device)
    count = torch.tensor(float(n * (n - 1)), dtype=sq_dist.dtype, device=sq_dist.device)
    return torch.logsumexp(-t * sq_dist[off_diagonal], dim=0) - count.log()


def slerp(a: torch.Tensor, b: torch.Tensor, weight: float | torch.Tensor) -> torch.Tensor:
    """Unit vectors on the great circle from `a` (weight 0) to `b` (weight 1) (Shoemake 1985).

    slerp(a, b, w) = [sin((1−w)θ) a + sin(wθ) b] / sin θ with θ = arccos(a·b): the geodesic
    mixup of m²/m³-mix (Oh et al., NeurIPS 2023). Numerically safe, finite values and gradients:

    * a·b is clamped to [−1 + ε, 1 − ε] (ε = 1e-4 in float32, 1e-6 in float64) before the
      arccos, whose derivative is infinite at ±1; identical vectors then return `a` exactly up
      to rounding (both terms are multiples of `a`);
    * antipodal vectors (a·b ≤ −1 + 2ε) have no unique great circle: `b` is first nudged by 0.1
      towards a fixed direction orthogonal to `a` (the unit axis of `a`'s smallest-magnitude
      coordinate, with its `a` component removed), so the path is deterministic and passes
      near that orthogonal direction at w = 1/2.

    Args:
        a: (..., D) unit vectors.
        b: (..., D) unit vectors, same shape as `a`.
        weight: scalar, or a tensor broadcastable to (..., 1) (e.g. (N,) or (N, 1) per row).

    Returns:
        (..., D) unit vectors.
    """
    if a.shape != b.shape:
        raise ValueError(f"slerp needs a and b of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    w = torch.as_tensor(weight, dtype=a.dtype, device=a.device)
    if w.ndim > 0 and w.shape[-1] != 1:
        w = w.unsqueeze(-1)  # (N,) → (N, 1)
    eps = 1e-6 if a.dtype == torch.float64 else 1e-4
    antipodal = (a * b).sum(-1, keepdim=True) <= -1 + 2 * eps  # (..., 1)
    if antipodal.any():
        fixed = a.detach()
        axis = torch.zeros_like(fixed).scatter_(-1, fixed.abs().argmin(-1, keepdim=True), 1.0)  # (..., D)
        axis = F.normalize(axis - (axis * fixed).sum(-1, keepdim=True) * fixed, dim=-1)  # ⊥ a
        b = torch.where(antipodal, F.normalize(b + 0.1 * axis, dim=-1), b)
    theta = torch.arccos((a * b).sum(-1, keepdim=True).clamp(-1 + eps, 1 - eps))  # (..., 1)
    mixed = (torch.sin((1 - w) * theta) * a + torch.sin(w * theta) * b) / torch.sin(theta)
    return F.normalize(mixed, dim=-1)


def nt_xent_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    temperature: float,
    z1_all: torch.Tensor | None = None,
    z2_all: torch.Tensor | None = None,
    offset: int = 0,
) -> torch.Tensor:
    """SimCLR's NT-Xent of two views (Chen et al. 2020, Eq. 1), as SLIP uses it (Mu et al. 2022).

    Each of the 2B local anchors has its other view as the positive and every other one of
    the 2N global views as negatives (itself excluded). With DDP pass the gathered views as
    `z*_all` (with gradients) and ``offset = rank * B``, as for `contrastive_loss`.

    Args:
        z1: first-view projections (B, D); normalised here.
        z2: second-view projections (B, D).
        temperature: τ > 0 (SLIP: 0.1).
        z1_all: first views of the global batch (N, D) containing `z1` at `offset`; None = `z1`.
        z2_all: second views of the global batch (N, D).
        offset: row of the global batch where this process's rows start.

    Returns:
        The mean cross-entropy over the 2B local anchors, a scalar.
    """
    _check_pair(z1, z2, "view ")
    z1_all, z2_all = (z1, z2) if z1_all is None else (z1_all, z2_all)
    _check_pair(z1_all, z2_all, "global view ")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    batch, total = z1.shape[0], z1_all.shape[0]
    if offset < 0 or offset + batch > total:
        raise ValueError(f"offset {offset} + local batch {batch} exceeds the global batch {total}")
    anchors = F.normalize(torch.cat([z1, z2]), dim=-1)  # (2B, D)
    candidates = F.normalize(torch.cat([z1_all, z2_all]), dim=-1)  # (2N, D)
    logits = anchors @ candidates.T / temperature  # (2B, 2N)
    rows = torch.arange(batch, device=z1.device) + offset  # (B,) global rows of the local anchors
    self_cols = torch.cat([rows, rows + total])  # (2B,) each anchor's own column
    positive = torch.cat([rows + total, rows])  # (2B,) the other view
    logits = logits.masked_fill(F.one_hot(self_cols, 2 * total).bool(), float("-inf"))
    return F.cross_entropy(logits, positive)


def filip_similarity(
    image_tokens: torch.Tensor, text_tokens: torch.Tensor, text_mask: torch.Tensor, chunk_size: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-wise late-interaction similarities of every image with every text (FILIP, Yao et al. 2022, Eq. 4–5).

    ``i2t[i, j]`` is the mean over image i's patches of the best-matching token of text j;
    ``t2i[j, i]`` the mean over text j's real tokens of the best-matching patch of image i.

    Args:
        image_tokens: normalised patch embeddings (Bi, P, D).
        text_tokens: normalised token embeddings (Bt, T, D).
        text_mask: (Bt, T), nonzero at real tokens (padding is never matched nor averaged).
        chunk_size: images per chunk: memory is O(chunk·Bt·P·T) instead of O(Bi·Bt·P·T).

    Returns:
        ``i2t`` (Bi, Bt) and ``t2i`` (Bt, Bi).
    """
    if image_tokens.ndim != 3 or text_tokens.ndim != 3 or image_tokens.shape[-1] != text_tokens.shape[-1]:
        raise ValueError(f"need image tokens (Bi, P, D) and text tokens (Bt, T, D), got {tuple(image_tokens.shape)} and {tuple(text_tokens.shape)}")
    if text_mask.shape != text_tokens.shape[:2]:
        raise ValueError(f"text_mask must be (Bt, T) = {tuple(text_tokens.shape[:2])}, got {tuple(text_mask.shape)}")
    real = text_mask.bool()  # (Bt, T)
    counts = real.sum(1).clamp_min(1).to(image_tokens.dtype)  # (Bt,)
    i2t, t2i = [], []
    for start in range(0, len(image_tokens), max(int(chunk_size), 1)):
        sim = torch.einsum("ipd,jtd->ijpt", image_tokens[start : start + chunk_size], text_tokens)  # (c, Bt, P, T)
        best_token = sim.masked_fill(~real[None, :, None, :], float("-inf")).amax(-1)  # (c, Bt, P)
        i2t.append(best_token.mean(-1))  # (c, Bt)
        best_patch = sim.amax(2).masked_fill(~real[None], 0.0)  # (c, Bt, T)
        t2i.append((best_patch.sum(-1) / counts).T)  # (Bt, c)
    return torch.cat(i2t), torch.cat(t2i, dim=1)


def filip_loss(
    image_tokens: torch.Tensor,
    text_tokens: torch.Tensor,
    text_mask: torch.Tensor,
    logit_scale: torch.Tensor,
    image_tokens_all: torch.Tensor | None = None,
    text_tokens_all: torch.Tensor | None = None,
    text_mask_all: torch.Tensor | None = None,
    offset: int = 0,
    chunk_size: int = 64,
) -> torch.Tensor:
    """FILIP's symmetric InfoNCE over token-wise similarities (Yao et al. 2022, Eq. 6).

    Local rows against global columns as in `contrastive_loss` (``*_all`` gathered with
    gradients, ``offset = rank * B``); None = single process.

    Args:
        image_tokens: this process's normalised patch embeddings (B, P, D).
        text_tokens: its normalised token embeddings (B, T, D).
        text_mask: (B, T), nonzero at real tokens.
        logit_scale: exp of the learnable log inverse temperature, a scalar.
        image_tokens_all: (N, P, D); text_tokens_all (N, T', D) and text_mask_all (N, T') likewise.
        offset: row of the global batch where this process's rows start.
        chunk_size: see `filip_similarity`.

    Returns:
        The mean of the image→text and text→image cross-entropies, a scalar.
    """
    if image_tokens_all is None:
        image_tokens_all, text_tokens_all, text_mask_all = image_tokens, text_tokens, text_mask
    batch, total = image_tokens.shape[0], image_tokens_all.shape[0]
    if text_tokens.shape[0] != batch or offset < 0 or offset + batch > total:
        raise ValueError(f"need B image and B text rows inside the global batch {total} at offset {offset}, "
                         f"got {batch} and {text_tokens.shape[0]}")
    labels = torch.arange(offset, offset + batch, device=image_tokens.device)
    logits_per_image, _ = filip_similarity(image_tokens, text_tokens_all, text_mask_all, chunk_size)  # (B, N)
    _, logits_per_text = filip_similarity(image_tokens_all, text_tokens, text_mask, chunk_size)  # (B, N)
    return 0.5 * (F.cross_entropy(logit_scale * logits_per_image, labels)
                  + F.cross_entropy(logit_scale * logits_per_text, labels))
