"""GPU-ready settings checked on CPU: each runs a step and matches float32 within a stated tolerance.

Tolerances (docs/gpu.md): channels_last, gradient checkpointing and compile (eager backend)
change the order of nothing that is summed, so loss and gradients match the default run to
float32 rounding (1e-5 relative); bf16-mixed runs the towers with 8 significant bits, so the
loss matches to 1e-2 relative and the gradient to 5e-2 relative L2 error, while the InfoNCE
logits themselves are float32 (checked against float64 to 1e-5).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from medalign.losses import clip_loss, siglip_loss
from medalign.optim import build_optimizer, fused_supported, param_groups
from medalign.training.module import ContrastiveModule
from tests.helpers import TINY, fit_tiny

VOCAB = 300


def _batch(size: int = 8, length: int = 16) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "image": torch.randn(size, 3, 64, 64, generator=g),
        "input_ids": torch.randint(5, VOCAB, (size, length), generator=g),
        "attention_mask": torch.ones(size, length, dtype=torch.long),
    }


def _step(bf16: bool = False, **settings) -> tuple[ContrastiveModule, float, dict[str, torch.Tensor]]:
    """One forward + backward of the tiny model in train mode (dropout on, same seed): loss and gradients."""
    torch.manual_seed(0)
    module = ContrastiveModule(preset="tiny", vocab_size=VOCAB, **settings).train()
    torch.manual_seed(1)  # the dropout masks
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = module(_batch())
        loss = clip_loss(out.image_emb, out.text_emb, out.logit_scale)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in module.named_parameters() if p.grad is not None}
    return module, float(loss.detach()), grads


@pytest.fixture(scope="module")
def fp32():
    return _step()


def _assert_grads_close(grads, reference, rel: float) -> None:
    assert grads.keys() == reference.keys()
    flat, ref = torch.cat([g.flatten() for g in grads.values()]), torch.cat([g.flatten() for g in reference.values()])
    assert float((flat - ref).norm() / ref.norm()) < rel
    assert ref.norm() > 0


# ---------------------------------------------------------------- fused AdamW
def _fake(is_cuda: bool, dtype: torch.dtype = torch.float32) -> SimpleNamespace:
    return SimpleNamespace(is_cuda=is_cuda, dtype=dtype)


@pytest.mark.parametrize(
    "tensors, expected",
    [
        ([_fake(True), _fake(True, torch.bfloat16), _fake(True, torch.float16)], True),
        ([_fake(True), _fake(False)], False),  # one tensor left on the CPU
        ([_fake(False), _fake(False)], False),
        ([_fake(True), _fake(True, torch.int64)], False),  # not a floating dtype the kernel takes
        ([], False),
    ],
)
def test_fused_adamw_is_chosen_only_when_every_tensor_is_on_cuda_in_a_supported_dtype(tensors, expected):
    assert fused_supported(tensors) is expected


def test_on_cpu_the_optimizer_does_not_request_the_fused_kernel():
    module = ContrastiveModule(preset="tiny", vocab_size=VOCAB)
    optimizer = build_optimizer(param_groups(module.model.named_parameters(), 1e-3), 1e-4, (0.9, 0.98), 1e-6)
    assert isinstance(optimizer, torch.optim.AdamW) and not optimizer.defaults["fused"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_optimizer_is_fused():
    params = [torch.nn.Parameter(torch.randn(4, 4, device="cuda"))]
    assert build_optimizer([{"params": params}], 1e-4, (0.9, 0.98), 1e-6).defaults["fused"] is True


# ------------------------------------------------------------ channels_last
def test_channels_last_matches_the_default_layout(fp32):
    _, loss_ref, grads_ref = fp32
    module, loss, grads = _step(channels_last=True)
    patch_conv = module.model.image_encoder.backbone.patch_embed.proj.weight  # (E, 3, p, p)
    assert patch_conv.is_contiguous(memory_format=torch.channels_last) and not patch_conv.is_contiguous()
    assert loss == pytest.approx(loss_ref, rel=1e-5)
    _assert_grads_close(grads, grads_ref, 1e-5)


# ---------------------------------------------------- gradient checkpointing
def _saved_bytes(module: ContrastiveModule) -> int:
    """Bytes of the tensors autograd keeps for the backward pass of one forward."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(_batch())
    return total


def test_gradient_checkpointing_matches_and_keeps_fewer_activations(fp32):
    reference, loss_ref, grads_ref = fp32
    module, loss, grads = _step(gradient_checkpointing=True)
    assert loss == pytest.approx(loss_ref, rel=1e-5)
    _assert_grads_close(grads, grads_ref, 1e-5)
    assert _saved_bytes(module) < 0.6 * _saved_bytes(reference)  # both towers' blocks recompute instead


# ---------------------------------------------------------------- bf16-mixed
def test_bf16_autocast_step_matches_fp32_within_the_stated_tolerance(fp32):
    _, loss_ref, grads_ref = fp32
    module, loss, grads = _step(bf16=True)
    assert loss == pytest.approx(loss_ref, rel=1e-2)
    _assert_grads_close(grads, grads_ref, 5e-2)
    assert all(g.dtype == torch.float32 for g in grads.values())  # master weights stay float32


def test_embeddings_and_logits_are_float32_under_autocast():
    g = torch.Generator().manual_seed(0)
    text = F.normalize(torch.randn(32, 64, generator=g, dtype=torch.float64), dim=-1)
    image = F.normalize(text + 0.5 * torch.randn(32, 64, generator=g, dtype=torch.float64), dim=-1)
    scale, bias = torch.tensor(100.0, dtype=torch.float64), torch.tensor(-10.0, dtype=torch.float64)
    # float64 reference by an independent rule: log-softmax of the scaled cosine matrix
    logits = scale * image @ text.T
    diag = torch.arange(32)
    ref = -(logits.log_softmax(1)[diag, diag].mean() + logits.T.log_softmax(1)[diag, diag].mean()) / 2
    labels = 2 * torch.eye(32, dtype=torch.float64) - 1
    ref_sig = -F.logsigmoid(labels * (logits + bias)).sum() / 32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = clip_loss(image.float(), text.float(), scale.float())
        got_sig = siglip_loss(image.float(), text.float(), scale.float(), bias.float())
        out = ContrastiveModule(preset="tiny", vocab_size=VOCAB)(_batch())
    assert got.dtype == torch.float32 and float(got) == pytest.approx(float(ref), rel=1e-5)
    assert float(got_sig) == pytest.approx(float(ref_sig), rel=1e-5)
    assert out.image_emb.dtype == torch.float32 and out.text_emb.dtype == torch.float32


# ------------------------------------------------------------------- compile
@pytest.mark.slow
def test_compiled_towers_give_the_same_step_and_the_same_checkpoint_keys(fp32):
    reference, loss_ref, grads_ref = fp32
    torch._dynamo.reset()
    module, loss, grads = _step(compile=True, compile_kwargs={"backend": "eager"})
    assert module.model.image_encoder._compiled_call_impl is not None
    assert module.model.text_encoder._compiled_call_impl is not None
    assert list(module.state_dict()) == list(reference.state_dict())  # no _orig_mod. prefix
    assert loss == pytest.approx(loss_ref, rel=1e-6)
    _assert_grads_close(grads, grads_ref, 1e-6)


# ------------------------------------------------------- end to end, in fit
@pytest.mark.slow
def test_fit_with_all_gpu_settings_runs_on_cpu(tmp_path, synthetic_dir):
    torch._dynamo.reset()
    cli = fit_tiny(
        tmp_path, synthetic_dir,
        "--config", "precision/bf16", "--trainer.max_steps", "2",
        "--model.init_args.channels_last", "true", "--model.init_args.gradient_checkpointing", "true",
        "--model.init_args.compile", "true", "--model.init_args.compile_kwargs", "{backend: eager}",
        config=TINY,
    )
    assert cli.trainer.global_step == 2 and cli.trainer.precision == "bf16-mixed"
    assert torch.isfinite(cli.trainer.callback_metrics["loss"])
    assert not cli.trainer.optimizers[0].defaults["fused"]  # CPU


@pytest.mark.slow
def test_fp16_config_asks_for_16_mixed_and_cpu_falls_back_to_bf16(tmp_path, synthetic_dir):
    with pytest.warns(UserWarning, match="fp16 is not supported on CPU"):
        cli = fit_tiny(tmp_path, synthetic_dir, "--config", "precision/fp16", "--trainer.max_steps", "1", config=TINY)
    assert cli.config["fit"]["trainer"]["precision"] == "16-mixed"
    assert cli.trainer.precision == "bf16-mixed" and cli.trainer.global_step == 1


# ------------------------------------------------- throughput benchmark script
def _bench():
    from tests.conftest import load_script

    return load_script("bench_gpu_throughput")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_throughput_benchmark_refuses_without_cuda(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _bench().parse_args([])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "no CUDA device" in err and "--tiny" in err


def test_throughput_benchmark_compares_the_same_model_in_open_clip(tmp_path):
    bench = _bench()
    args = bench.parse_args(["--tiny"])
    init, _, _ = bench.model_settings(args)
    clip, _ = bench.build_open_clip(init, args, tmp_path)
    ours = bench.build_medalign(init).model.eval()
    batch = bench.make_batch(4, args.image_size, args.length, args.vocab, "cpu")
    with torch.no_grad():
        out = ours(batch["image"], batch["input_ids"], batch["attention_mask"])
        theirs = clip.eval()(batch["image"], batch["input_ids"])
    assert torch.allclose(theirs["image_features"], out.image_emb, atol=1e-5)
    assert torch.allclose(theirs["text_features"], out.text_emb, atol=1e-5)
