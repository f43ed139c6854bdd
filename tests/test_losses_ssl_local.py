"""`nt_xent_loss` and `filip_loss` against loop implementations of their papers' formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from medalign.losses import filip_loss, filip_similarity, nt_xent_loss


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
