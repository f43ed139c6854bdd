"""`contrastive_loss` / `clip_loss` against open_clip (unmasked) and a hand-written masked log-softmax."""

import math

import open_clip
import pytest
import torch
import torch.nn.functional as F

from medalign.losses import clip_loss, contrastive_loss


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
