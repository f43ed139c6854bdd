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


@pytest.mark.parametrize("n,d,scale", [(2, 4, 1.0), (8, 16, 1 / 0.07), (33, 64, 100.0)])
def test_clip_loss_matches_open_clip(n, d, scale):
    v, t = _pairs(n, d, seed=n)
    v.requires_grad_(True)
    t.requires_grad_(True)
    ours = clip_loss(v, t, torch.tensor(scale))
    reference = open_clip.ClipLoss()(v, t, torch.tensor(scale))
    torch.testing.assert_close(ours, reference)
    g_ours = torch.autograd.grad(ours, (v, t))
    g_ref = torch.autograd.grad(open_clip.ClipLoss()(v, t, torch.tensor(scale)), (v, t))
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b)


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


def test_shape_errors_name_the_shapes():
    v, t = _pairs(4, 8, seed=0)
    with pytest.raises(ValueError, match=r"\(4, 8\) and \(3, 8\)"):
        clip_loss(v, t[:3], torch.tensor(1.0))
    with pytest.raises(ValueError, match="exceeds the global batch"):
        contrastive_loss(v, t, v, t, torch.tensor(1.0), offset=2)
