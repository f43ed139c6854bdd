"""SigLIP, the gap-closing terms, slerp and the m³-mix / DACL pieces against direct implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medalign.losses import align_true_pairs_loss, centroid_uniformity_loss, siglip_contrastive_loss, siglip_loss, slerp
from medalign.methods.dacl import dacl_mix
from medalign.methods.m3mix import m3mix_loss, m3mix_negatives


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


# ----------------------------------------------------------------- m³-mix
def test_m3mix_loss_matches_a_loop():
    v, t = _unit(5, 4, 16), _unit(5, 4, 17)
    s, lam = 3.0, 0.3
    m = m3mix_negatives(v, t, lam)
    total = 0.0
    for i in range(5):
        for anchor in (v[i], t[i]):
            pos = s * float(v[i] @ t[i])
            negs = [s * float(anchor @ m[j]) for j in range(5) if j != i]
            total += -pos + math.log(math.exp(pos) + sum(math.exp(x) for x in negs))
    got = m3mix_loss(v, t, m, torch.tensor(s, dtype=torch.float64))
    assert float(got) == pytest.approx(total / 10, rel=1e-10)
    halves = [m3mix_loss(v[r * 2:(r + 1) * 2], t[r * 2:(r + 1) * 2], m[:4], torch.tensor(s, dtype=torch.float64), r * 2) for r in range(2)]
    assert float(sum(halves) / 2) == pytest.approx(float(m3mix_loss(v[:4], t[:4], m[:4], torch.tensor(s, dtype=torch.float64))), rel=1e-10)


# ------------------------------------------------------------------- DACL
def test_dacl_mixes_each_image_with_another_keeping_most_of_itself():
    images = torch.randn(6, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    mixed, partner, weight = dacl_mix(images, torch.Generator().manual_seed(1), (0.9, 1.0))
    assert (partner != torch.arange(6)).all() and ((weight >= 0.9) & (weight <= 1.0)).all()
    for i in range(6):
        torch.testing.assert_close(mixed[i], weight[i] * images[i] + (1 - weight[i]) * images[partner[i]])
    again, _, _ = dacl_mix(images, torch.Generator().manual_seed(1), (0.9, 1.0))
    torch.testing.assert_close(again, mixed)
    with pytest.raises(ValueError, match="dacl_range"):
        dacl_mix(images, torch.Generator(), (0.2, 1.0))
