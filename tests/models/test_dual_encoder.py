import math

import pytest
import torch

from medalign.models import create_dual_encoder, get_preset, load_weights
from medalign.models.text import TextEncoder


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_dual_encoder("tiny", vocab_size=300).eval()


def _batch(b=3, length=12):
    g = torch.Generator().manual_seed(0)
    mask = torch.ones(b, length, dtype=torch.long)
    mask[0, 6:] = 0
    return torch.randn(b, 3, 64, 64, generator=g), torch.randint(5, 300, (b, length), generator=g), mask


def test_outputs_are_normalised_with_512_dims_and_initial_temperature(model):
    out = model(*_batch())
    assert out.image_emb.shape == out.text_emb.shape == (3, 512)
    torch.testing.assert_close(out.image_emb.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(out.text_emb.norm(dim=-1), torch.ones(3))
    assert out.logit_scale.item() == pytest.approx(1 / 0.07)
    assert model.image_projection.bias is None and model.text_projection.bias is None


def test_logit_scale_clamped_to_100(model):
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    model.clamp_logit_scale(100.0)
    assert model.logit_scale.exp().item() == pytest.approx(100.0)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(1 / 0.07))


def test_padding_does_not_change_text_embedding(model):
    images, ids, mask = _batch()
    emb = model.encode_text(ids[:1, :6], mask[:1, :6])
    emb_padded = model.encode_text(ids[:1], mask[:1])  # same text + 6 masked tokens
    torch.testing.assert_close(emb, emb_padded, atol=1e-5, rtol=1e-4)


def test_mean_pooling_averages_real_tokens_only():
    torch.manual_seed(0)
    enc = TextEncoder(vocab_size=50, config=get_preset("tiny").text_config, pooling="mean").eval()
    ids = torch.randint(5, 50, (1, 8))
    mask = torch.tensor([[1, 1, 1, 0, 0, 0, 0, 0]])
    hidden = enc.model(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(enc(ids, mask), hidden[:, :3].mean(1))


def test_unknown_preset_lists_known_ones():
    with pytest.raises(ValueError, match="tiny"):
        create_dual_encoder("resnet9000", vocab_size=10)


def test_local_text_dir_round_trip(tmp_path):
    torch.manual_seed(0)
    enc = TextEncoder(vocab_size=60, config=get_preset("tiny").text_config).eval()
    enc.model.save_pretrained(tmp_path / "bert")
    loaded = TextEncoder(pretrained_dir=str(tmp_path / "bert")).eval()
    ids, mask = torch.randint(5, 60, (2, 7)), torch.ones(2, 7, dtype=torch.long)
    torch.testing.assert_close(enc(ids, mask), loaded(ids, mask))
    with pytest.raises(ValueError, match="--data.tokenizer"):
        TextEncoder(vocab_size=500, pretrained_dir=str(tmp_path / "bert"))
    with pytest.raises(FileNotFoundError, match="config.json"):
        TextEncoder(pretrained_dir=str(tmp_path / "nowhere"))


def test_load_weights_round_trip_and_shape_errors(tmp_path, model):
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "a.ckpt")
    torch.manual_seed(1)
    other = create_dual_encoder("tiny", vocab_size=300).eval()
    missing, unexpected = load_weights(other, tmp_path / "a.ckpt")
    assert missing == [] and unexpected == []
    batch = _batch()
    torch.testing.assert_close(other(*batch).image_emb, model(*batch).image_emb)
    wrong = create_dual_encoder("tiny", vocab_size=301)
    with pytest.raises(ValueError, match="shape mismatch"):
        load_weights(wrong, tmp_path / "a.ckpt")
