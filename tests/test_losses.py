"""`medalign.losses` against independent computations: CLIP / contrastive loss vs open_clip and a
hand-written masked log-softmax; SigLIP, the gap-closing terms and slerp vs direct implementations;
NT-Xent and FILIP vs loop implementations of their papers' formulas."""

from __future__ import annotations

import math

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F

from medalign.losses import (
    align_true_pairs_loss,
    centroid_uniformity_loss,
    clip_loss,
    contrastive_loss,
    filip_loss,
    filip_similarity,
    nt_xent_loss,
    siglip_contrastive_loss,
    siglip_loss,
    slerp,
)


def _pairs(n: int, d: int, seed: int, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    v = F.normalize(torch.randn(n, d, generator=g, dtype=dtype), dim=-1)
    t = F.normalize(v + 0.5 * torch.randn(n, d, generator=g, dtype=dtype), dim=-1)
    return v, t


def _grads(loss_fn, *tensors):
    leaves = [x.detach().clone().requires_grad_(True) for x in tensors]
    loss = loss_fn(*leaves)
    return loss.detach(), torch.autograd.grad(loss, leaves)


@pytest.mark.parametrize("n,d,scale", [(2, 4, 1.0), (8, 16, 1 / 0.07), (33, 64, 100.0)])
def test_clip_loss_matches_open_clip(n, d, scale):
    v, t = _pairs(n, d, seed=n)
    s = torch.tensor(scale)
    ours, g_ours = _grads(lambda a, b: clip_loss(a, b, s), v, t)
    reference, g_ref = _grads(lambda a, b: open_clip.ClipLoss()(a, b, s), v, t)
    torch.testing.assert_close(ours, reference)
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("mask", [None, "all_false"])
def test_unmasked_contrastive_loss_matches_open_clip(mask):
    """mask=None and an all-False mask are the plain InfoNCE, value and gradients."""
    v, t = _pairs(10, 16, seed=7)
    s = torch.tensor(20.0)
    m = torch.zeros(10, 10, dtype=torch.bool) if mask else None
    ours, g_ours = _grads(lambda a, b: contrastive_loss(a, b, a, b, s, mask=m), v, t)
    reference, g_ref = _grads(lambda a, b: open_clip.ClipLoss()(a, b, s), v, t)
    torch.testing.assert_close(ours, reference)
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b)


def masked_reference(image, text, scale, mask):
    """Row by row: −log softmax of the positive over the columns the mask keeps (both directions)."""
    n, terms = len(image), []
    for i in range(n):
        keep = [j for j in range(n) if not mask[i, j]]
        for query, keys in ((image[i], text), (text[i], image)):
            logits = torch.stack([scale * (query * keys[j]).sum() for j in keep])
            terms.append(-(scale * (query * keys[i]).sum() - torch.logsumexp(logits, 0)))
    return torch.stack(terms).sum() / (2 * n)


def test_masked_loss_matches_a_hand_written_masked_log_softmax():
    v, t = _pairs(7, 8, seed=2)
    s = torch.tensor(5.0)
    ids = [10, 11, 12, 13, 14, 11, 13]  # rows 5, 6 repeat pairs 11 and 13
    mask = torch.tensor([[ids[i] == ids[j] and i != j for j in range(7)] for i in range(7)])
    ours, g_ours = _grads(lambda a, b: contrastive_loss(a, b, a, b, s, mask=mask), v, t)
    reference, g_ref = _grads(lambda a, b: masked_reference(a, b, s, mask), v, t)
    torch.testing.assert_close(ours, reference)
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b)
    assert abs(float(ours) - float(clip_loss(v, t, s))) > 1e-3  # the mask changed the loss


def test_masked_local_rows_with_offset_average_to_the_global_masked_loss():
    v, t = _pairs(6, 8, seed=4)
    s = torch.tensor(3.0)
    mask = torch.zeros(6, 6, dtype=torch.bool)
    mask[1, 3] = mask[3, 1] = True
    full = contrastive_loss(v, t, v, t, s, mask=mask)
    halves = [contrastive_loss(v[r : r + 3], t[r : r + 3], v, t, s, offset=r, mask=mask[r : r + 3]) for r in (0, 3)]
    torch.testing.assert_close(full, sum(halves) / 2)  # what DDP's gradient averaging sees


def test_clip_loss_perfect_alignment_is_small_and_random_is_log_n():
    v, _ = _pairs(16, 32, seed=1)
    assert clip_loss(v, v, torch.tensor(100.0)) < 1e-3
    # with a zero logit scale every class is equally likely: loss = ln N exactly
    torch.testing.assert_close(clip_loss(v, v.flip(0), torch.tensor(0.0)), torch.tensor(math.log(16)))


def test_local_rows_against_global_columns_average_to_global_loss():
    """What each DDP rank computes: the mean over ranks equals the single-process loss."""
    v, t = _pairs(12, 8, seed=3)
    scale = torch.tensor(10.0)
    per_rank = [contrastive_loss(v[r * 4 : (r + 1) * 4], t[r * 4 : (r + 1) * 4], v, t, scale, offset=r * 4) for r in range(3)]
    torch.testing.assert_close(torch.stack(per_rank).mean(), clip_loss(v, t, scale))


def test_shape_and_mask_errors_name_the_fix():
    v, t = _pairs(4, 8, seed=0)
    with pytest.raises(ValueError, match=r"\(4, 8\) and \(3, 8\)"):
        clip_loss(v, t[:3], torch.tensor(1.0))
    with pytest.raises(ValueError, match="exceeds the global batch"):
        contrastive_loss(v, t, v, t, torch.tensor(1.0), offset=2)
    with pytest.raises(ValueError, match=r"shape \(B, N\) = \(4, 4\)"):
        contrastive_loss(v, t, v, t, torch.tensor(1.0), mask=torch.zeros(4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="removes a positive"):
        contrastive_loss(v, t, v, t, torch.tensor(1.0), mask=torch.eye(4, dtype=torch.bool))


def _unit(n: int, d: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype), dim=-1)


# ------------------------------------------------------------------ SigLIP
def test_siglip_matches_a_loop_over_pairs():
    v, t = _unit(6, 4, 0), _unit(6, 4, 1)
    scale, bias = torch.tensor(7.0, dtype=torch.float64), torch.tensor(-3.0, dtype=torch.float64)
    total = 0.0
    for i in range(6):
        for j in range(6):
            z = float(scale) * float(v[i] @ t[j]) + float(bias)
            y = 1.0 if i == j else -1.0
            total += math.log1p(math.exp(-y * z))  # −log σ(y z)
    assert float(siglip_loss(v, t, scale, bias)) == pytest.approx(total / 6, rel=1e-12)


def test_siglip_equals_open_clip():
    from open_clip.loss import SigLipLoss

    v, t = _unit(16, 8, 2, torch.float32), _unit(16, 8, 3, torch.float32)
    scale, bias = torch.tensor(10.0), torch.tensor(-10.0)
    torch.testing.assert_close(siglip_loss(v, t, scale, bias), SigLipLoss()(v, t, scale, bias))


def test_siglip_local_rows_average_to_the_global_loss():
    v, t = _unit(8, 4, 4), _unit(8, 4, 5)
    scale, bias = torch.tensor(5.0, dtype=torch.float64), torch.tensor(-2.0, dtype=torch.float64)
    halves = [siglip_contrastive_loss(v[r * 4:(r + 1) * 4], t, scale, bias, offset=r * 4) for r in range(2)]
    torch.testing.assert_close(sum(halves) / 2, siglip_loss(v, t, scale, bias))


# ---------------------------------------------------------- gap-closing
def test_align_true_pairs_is_the_mean_squared_pair_distance():
    v, t = _unit(5, 3, 6), _unit(5, 3, 7)
    expected = np.mean([np.sum((v[i].numpy() - t[i].numpy()) ** 2) for i in range(5)])
    assert float(align_true_pairs_loss(v, t)) == pytest.approx(expected, rel=1e-12)
    assert float(align_true_pairs_loss(v, v)) == 0.0


def test_centroid_uniformity_matches_a_loop_over_distinct_pairs():
    v, t = _unit(5, 3, 8), _unit(5, 3, 9)
    c = (v.numpy() + t.numpy()) / 2
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    values = [math.exp(-2.0 * np.sum((c[i] - c[j]) ** 2)) for i in range(5) for j in range(5) if i != j]
    assert float(centroid_uniformity_loss(v, t)) == pytest.approx(math.log(np.mean(values)), rel=1e-10)
    values = [math.exp(-0.5 * np.sum((c[i] - c[j]) ** 2)) for i in range(5) for j in range(5) if i != j]
    assert float(centroid_uniformity_loss(v, t, t=0.5)) == pytest.approx(math.log(np.mean(values)), rel=1e-10)


def test_centroid_uniformity_has_finite_gradients_for_identical_and_antipodal_pairs():
    v = _unit(4, 3, 10, torch.float32)
    for text in (v.clone(), -v.clone()):  # identical centroids / zero mean (antipodal pair)
        image = torch.cat([v[:1], v[:1], v[2:]]).requires_grad_(True)  # two coincident centroids
        text = text.requires_grad_(True)
        loss = centroid_uniformity_loss(image, text)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(image.grad).all() and torch.isfinite(text.grad).all()


def test_pair_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\)"):
        align_true_pairs_loss(torch.zeros(3, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="at least 2"):
        centroid_uniformity_loss(_unit(1, 3, 0), _unit(1, 3, 1))


# ------------------------------------------------------------------ slerp
def test_slerp_follows_the_great_circle():
    a, b = _unit(6, 5, 11), _unit(6, 5, 12)
    for w in (0.0, 0.25, 0.5, 1.0):
        out = slerp(a, b, w)
        theta = torch.arccos((a * b).sum(-1))
        # independent rule: angle to a is w·θ, angle to b is (1−w)·θ, and it is a unit vector
        torch.testing.assert_close(out.norm(dim=-1), torch.ones(6, dtype=torch.float64))
        torch.testing.assert_close(torch.arccos((out * a).sum(-1).clamp(-1, 1)), w * theta, atol=2e-6, rtol=0)
        torch.testing.assert_close(torch.arccos((out * b).sum(-1).clamp(-1, 1)), (1 - w) * theta, atol=2e-6, rtol=0)


def test_slerp_of_orthogonal_vectors_by_hand():
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    torch.testing.assert_close(slerp(a, b, 1 / 3), torch.tensor([[math.cos(math.pi / 6), math.sin(math.pi / 6)]]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", ["identical", "antipodal"])
def test_slerp_is_finite_with_finite_gradients(case, dtype):
    a = _unit(4, 3, 13, dtype).requires_grad_(True)
    b = (a.detach().clone() if case == "identical" else -a.detach().clone()).requires_grad_(True)
    for w in (0.0, 0.3, 0.5, 1.0):
        out = slerp(a, b, w)
        (out * torch.arange(1.0, 4.0, dtype=dtype)).sum().backward()
        assert torch.isfinite(out).all() and torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
        torch.testing.assert_close(out.norm(dim=-1), torch.ones(4, dtype=dtype))
        a.grad = b.grad = None
    if case == "identical":
        torch.testing.assert_close(slerp(a, b, 0.4), a.detach(), atol=1e-6, rtol=0)
    else:  # the deterministic detour passes (nearly) orthogonal to a at w = 1/2
        assert (slerp(a, b, 0.5) * a).sum(-1).abs().max() < 0.15
        torch.testing.assert_close(slerp(a, b, 0.5), slerp(a, b, 0.5))


def test_slerp_accepts_one_weight_per_row():
    a, b = _unit(3, 4, 14), _unit(3, 4, 15)
    w = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    out = slerp(a, b, w)
    torch.testing.assert_close(out[0], a[0])
    torch.testing.assert_close(out[2], b[2])


def _nt_xent_loop(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> float:
    """SimCLR Eq. 1 over the 2N views, written as sums over k ≠ i."""
    z = F.normalize(torch.cat([z1, z2]), dim=-1).double()
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        denominator = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[j]) / tau) / denominator)
    return total / (2 * n)


def test_nt_xent_matches_the_simclr_sum():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    for tau in (0.1, 0.5):
        assert float(nt_xent_loss(z1, z2, tau)) == pytest.approx(_nt_xent_loop(z1, z2, tau), rel=1e-5)


def test_nt_xent_identical_views_with_orthogonal_rows_hit_the_closed_form():
    z = torch.eye(4)  # positive cosine 1, the 6 other views cosine 0 (the copy of itself is excluded)
    tau = 0.5
    expected = -math.log(math.exp(2) / (math.exp(2) + 6))
    assert float(nt_xent_loss(z, z.clone(), tau)) == pytest.approx(expected, rel=1e-6)


def test_nt_xent_local_rows_against_gathered_views_average_to_the_global_loss():
    """Two simulated ranks: the mean of their local losses (and its gradient) equals the global one."""
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(6, 4, generator=g, requires_grad=True), torch.randn(6, 4, generator=g, requires_grad=True)
    whole = nt_xent_loss(z1, z2, 0.2)
    (grad_whole,) = torch.autograd.grad(whole, z1)
    local = [nt_xent_loss(z1[r * 3 : (r + 1) * 3], z2[r * 3 : (r + 1) * 3], 0.2, z1, z2, offset=r * 3) for r in (0, 1)]
    mean = (local[0] + local[1]) / 2
    (grad_mean,) = torch.autograd.grad(mean, z1)
    assert float(mean) == pytest.approx(float(whole), rel=1e-6)
    torch.testing.assert_close(grad_mean, grad_whole)


def test_nt_xent_rejects_bad_input():
    with pytest.raises(ValueError, match="temperature"):
        nt_xent_loss(torch.randn(2, 3), torch.randn(2, 3), 0.0)
    with pytest.raises(ValueError, match="same shape"):
        nt_xent_loss(torch.randn(2, 3), torch.randn(3, 3), 0.1)


def _filip_loop(img: torch.Tensor, txt: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """FILIP Eq. 4–5 with explicit loops over images, texts, patches and real tokens."""
    bi, bt = len(img), len(txt)
    i2t, t2i = torch.zeros(bi, bt, dtype=torch.float64), torch.zeros(bt, bi, dtype=torch.float64)
    for i in range(bi):
        for j in range(bt):
            real = [t for t in range(txt.shape[1]) if mask[j, t]]
            i2t[i, j] = sum(max(float(img[i, p] @ txt[j, t]) for t in real) for p in range(img.shape[1])) / img.shape[1]
            t2i[j, i] = sum(max(float(img[i, p] @ txt[j, t]) for p in range(img.shape[1])) for t in real) / len(real)
    return i2t, t2i


def _tokens(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    img = F.normalize(torch.randn(5, 4, 6, generator=g), dim=-1)  # (Bi, P, D)
    txt = F.normalize(torch.randn(5, 7, 6, generator=g), dim=-1)  # (Bt, T, D)
    mask = torch.ones(5, 7, dtype=torch.long)
    mask[0, 3:] = 0
    mask[2, 5:] = 0
    return img, txt, mask


@pytest.mark.parametrize("chunk", [1, 2, 64])
def test_filip_similarity_matches_the_loop_at_any_chunk_size(chunk):
    img, txt, mask = _tokens()
    i2t, t2i = filip_similarity(img, txt, mask, chunk_size=chunk)
    ref_i2t, ref_t2i = _filip_loop(img, txt, mask)
    torch.testing.assert_close(i2t.double(), ref_i2t, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(t2i.double(), ref_t2i, rtol=1e-5, atol=1e-6)


def test_filip_padding_values_never_matter():
    img, txt, mask = _tokens()
    poisoned = txt.clone()
    poisoned[mask == 0] = 10.0  # padded positions with huge similarity would win every max
    for a, b in zip(filip_similarity(img, txt, mask), filip_similarity(img, poisoned, mask)):
        torch.testing.assert_close(a, b)


def test_filip_loss_is_the_symmetric_cross_entropy_of_the_loop_similarities_and_splits_over_ranks():
    img, txt, mask = _tokens(3)
    scale = torch.tensor(5.0)
    ref_i2t, ref_t2i = _filip_loop(img, txt, mask)
    labels = torch.arange(5)
    expected = 0.5 * (F.cross_entropy(5.0 * ref_i2t, labels) + F.cross_entropy(5.0 * ref_t2i, labels))
    assert float(filip_loss(img, txt, mask, scale)) == pytest.approx(float(expected), rel=1e-5)
    # two simulated ranks of 2 rows each: the mean of the local losses is the loss of the 4 rows
    img4, txt4, mask4 = img[:4], txt[:4], mask[:4]
    whole = filip_loss(img4, txt4, mask4, scale)
    local = [filip_loss(img4[r * 2 : r * 2 + 2], txt4[r * 2 : r * 2 + 2], mask4[r * 2 : r * 2 + 2], scale,
                        img4, txt4, mask4, offset=r * 2) for r in (0, 1)]
    assert float(sum(local) / 2) == pytest.approx(float(whole), rel=1e-6)


def test_filip_rejects_mismatched_shapes():
    img, txt, mask = _tokens()
    with pytest.raises(ValueError, match="text_mask"):
        filip_similarity(img, txt, mask[:, :3])
    with pytest.raises(ValueError, match=r"\(Bi, P, D\)"):
        filip_similarity(img[..., :3], txt, mask)
