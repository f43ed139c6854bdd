"""Heatmap processors: shapes, per-sample heatmap normalisation, and the MHA path against a re-derivation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medalign.models import CNNProcessor, HeatmapProcessor, MaskProcessor, create_heatmap_processor
from medalign.models.heatmap_processor import normalise_heatmap


def _inputs(batch: int, channels: int, height: int, width: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(batch, channels, height, width, generator=g)
    heatmap = torch.rand(batch, 1, height, width, generator=g) * torch.rand(batch, 1, 1, 1, generator=g) * 5
    return image, heatmap


@pytest.mark.parametrize("kind", ["mha", "mask", "cnn"])
@pytest.mark.parametrize("channels, height, width", [(3, 32, 32), (1, 64, 64), (3, 48, 80), (1, 224, 224)])
def test_output_has_the_input_shape(kind, channels, height, width):
    processor = create_heatmap_processor(kind, in_channels=channels, patch_size=16, width=32, num_heads=4)
    image, heatmap = _inputs(2, channels, height, width)
    out = processor(image, heatmap)
    assert out.shape == image.shape and out.dtype == image.dtype and torch.isfinite(out).all()


def test_paper_architecture_defaults():
    p = HeatmapProcessor()
    assert p.patch_embed.kernel_size == (16, 16) and p.patch_embed.out_channels == 256
    assert p.attention.num_heads == 8 and p.attention.embed_dim == 256
    assert isinstance(p.unpatchify, torch.nn.ConvTranspose2d) and p.unpatchify.out_channels == 3


def test_bad_inputs_raise_with_shapes():
    p = HeatmapProcessor(patch_size=16, width=32, num_heads=4)
    image, heatmap = _inputs(2, 3, 40, 48)
    with pytest.raises(ValueError, match="not divisible by the patch size 16"):
        p(image, heatmap)
    image, heatmap = _inputs(2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"heatmap must be \(B, 1, H, W\)"):
        p(image, heatmap[:, :, :16])
    with pytest.raises(ValueError, match=r"image must be \(B, 3, H, W\)"):
        p(image[:, :1], heatmap)
    with pytest.raises(ValueError, match="unknown heatmap processor 'unet'"):
        create_heatmap_processor("unet")


def test_heatmaps_are_normalised_per_sample_not_per_batch():
    heatmap = torch.stack([torch.full((1, 4, 4), 0.2), torch.full((1, 4, 4), 7.0)])
    heatmap[0, 0, 0, 0] = 0.4
    out = normalise_heatmap(heatmap)
    assert out.amax(dim=(1, 2, 3)).tolist() == [1.0, 1.0]
    assert out[0, 0, 1, 1] == pytest.approx(0.5)
    assert torch.equal(normalise_heatmap(torch.ones(2, 1, 8, 8)), torch.ones(2, 1, 8, 8))  # priming input


@pytest.mark.parametrize("kind", ["mha", "mask", "cnn"])
def test_sample_results_do_not_depend_on_the_rest_of_the_batch_or_heatmap_scale(kind):
    torch.manual_seed(0)
    processor = create_heatmap_processor(kind, in_channels=3, patch_size=8, width=32, num_heads=4).eval()
    image, heatmap = _inputs(3, 3, 32, 32)
    together = processor(image, heatmap)
    alone = torch.cat([processor(image[i : i + 1], 10 * heatmap[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


def test_mask_processor_is_elementwise_product_with_peak_normalised_heatmap():
    image, heatmap = _inputs(2, 1, 16, 16)
    expected = image.numpy() * (heatmap.numpy() / heatmap.numpy().max(axis=(1, 2, 3), keepdims=True))
    torch.testing.assert_close(MaskProcessor(1)(image, heatmap), torch.from_numpy(expected))
    assert list(MaskProcessor().parameters()) == []


def test_cnn_processor_has_parameters_and_sees_the_heatmap():
    torch.manual_seed(0)
    p = CNNProcessor(3, width=8)
    image, heatmap = _inputs(1, 3, 16, 16)
    assert sum(x.numel() for x in p.parameters()) > 0
    assert not torch.allclose(p(image, heatmap), p(image, torch.ones_like(heatmap)))


def test_mha_processor_matches_an_explicit_rederivation():
    """Patch embedding as unfold + matmul, attention by hand, transposed conv as matmul + fold."""
    torch.manual_seed(0)
    patch, width, heads = 8, 32, 4
    p = HeatmapProcessor(in_channels=3, patch_size=patch, width=width, num_heads=heads).eval()
    image, heatmap = _inputs(2, 3, 16, 24)
    overlaid = image * heatmap / heatmap.amax(dim=(1, 2, 3), keepdim=True)

    def embed(x):  # (B, C, H, W) → (B, P, width)
        cols = F.unfold(x, patch, stride=patch).transpose(1, 2)  # (B, P, C·p·p)
        return cols @ p.patch_embed.weight.reshape(width, -1).T + p.patch_embed.bias

    q_in, kv = embed(overlaid), embed(image)
    w_q, w_k, w_v = p.attention.in_proj_weight.chunk(3)
    b_q, b_k, b_v = p.attention.in_proj_bias.chunk(3)
    split = lambda x: x.reshape(2, -1, heads, width // heads).transpose(1, 2)  # (B, h, P, d)
    q, k, v = split(q_in @ w_q.T + b_q), split(kv @ w_k.T + b_k), split(kv @ w_v.T + b_v)
    attn = torch.softmax(q @ k.transpose(-1, -2) / (width // heads) ** 0.5, dim=-1) @ v  # (B, h, P, d)
    tokens = attn.transpose(1, 2).reshape(2, -1, width) @ p.attention.out_proj.weight.T + p.attention.out_proj.bias
    tokens = tokens @ p.linear.weight.T + p.linear.bias  # (B, P, width)
    cols = tokens @ p.unpatchify.weight.reshape(width, -1)  # (B, P, C·p·p)
    expected = F.fold(cols.transpose(1, 2), (16, 24), patch, stride=patch) + p.unpatchify.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(p(image, heatmap), expected, rtol=1e-4, atol=1e-5)
