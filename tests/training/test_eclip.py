"""`ECLIPModule` step by step: expert pairs, the p = 0 fast path, priming, parameter groups, decisions."""

from __future__ import annotations

from unittest import mock

import lightning as L
import numpy as np
import pytest
import torch

from medalign.losses import clip_loss
from medalign.training.eclip import ECLIPModule, expert_decision
from medalign.training.module import ContrastiveModule

VOCAB, N, M, SIZE = 64, 6, 4, 64
SMALL_MHA = {"patch_size": 16, "width": 32, "num_heads": 4}


def attach(module, **trainer_kwargs):
    module.trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                               enable_progress_bar=False, enable_model_summary=False, **trainer_kwargs)
    return module


def make_module(trainer_kwargs: dict | None = None, **kwargs) -> ECLIPModule:
    torch.manual_seed(0)
    module = attach(ECLIPModule(preset="tiny", vocab_size=VOCAB, **{"processor_kwargs": SMALL_MHA, **kwargs}), **(trainer_kwargs or {}))
    module.total_steps = 100  # global step 0 → progress 0
    module.eval()  # no dropout: embeddings are recomputed and compared below
    return module


def make_batch(n: int, seed: int, first_index: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "image": torch.randn(n, 3, SIZE, SIZE, generator=g),
        "input_ids": torch.randint(1, VOCAB, (n, 12), generator=g),
        "attention_mask": torch.ones(n, 12, dtype=torch.long),
        "heatmap": torch.rand(n, 1, SIZE, SIZE, generator=g),
        "has_heatmap": torch.ones(n, dtype=torch.bool),
        "labels": torch.zeros(n, 5),
        "index": torch.arange(first_index, first_index + n),
    }


def batch_with_experts() -> dict:
    return {**make_batch(N, 0), "expert": make_batch(M, 1, first_index=1000)}


class Counter:
    """Counts calls of the processor and the image tower, and records the tower's inputs / outputs."""

    def __init__(self, module: ECLIPModule):
        self.processor_calls, self.image_inputs, self.image_outputs = 0, [], []
        if module.processor is not None:
            module.processor.register_forward_hook(lambda *_: self._processor())
        module.model.image_encoder.register_forward_hook(self._image)

    def _processor(self):
        self.processor_calls += 1

    def _image(self, _module, args, output):
        self.image_inputs.append(args[0].detach().clone())


def test_step_without_experts_costs_exactly_a_clip_step():
    module = make_module(curriculum={"cold_start": 1.0, "warmup": 0.0, "cooldown": 0.0}, priming_fraction=0.0)
    assert module.expert_probability_at(0) == 0.0 and not module.priming_active(0)
    batch = batch_with_experts()
    counter = Counter(module)
    out = module(batch)
    assert len(counter.image_inputs) == 1  # the main forward
    terms = module.compute_losses(batch, out)
    assert counter.processor_calls == 0 and len(counter.image_inputs) == 1  # no processor call, no extra forward
    assert list(terms) == ["clip_loss"] and int(module.expert_pairs_seen) == 0
    torch.testing.assert_close(terms["clip_loss"], clip_loss(out.image_emb, out.text_emb, out.logit_scale), rtol=0, atol=0)


def test_clip_method_gives_the_contrastive_modules_loss_and_gradients():
    """Same seed, same batch: `method: clip` and `ContrastiveModule` agree in loss and every gradient."""
    batch = batch_with_experts()
    results = []
    for build in (lambda: make_module(method="clip"), lambda: attach(ContrastiveModule(preset="tiny", vocab_size=VOCAB))):
        torch.manual_seed(0)
        module = build()
        module.train()  # dropout on: both draw the same masks from the same seed
        torch.manual_seed(1)
        out = module(batch)
        loss = torch.stack(list(module.compute_losses(batch, out).values())).sum()
        loss.backward()
        results.append((loss.detach(), {n: p.grad for n, p in module.named_parameters()}))
    (loss_a, grads_a), (loss_b, grads_b) = results
    torch.testing.assert_close(loss_a, loss_b, rtol=0, atol=0)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 20
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=0, atol=0, msg=name)


@pytest.mark.parametrize("method", ["eclip", "naive"])
def test_expert_step_appends_exactly_m_pairs_to_one_infonce(method):
    module = make_module(method=method, use_curriculum=False, priming_weight=0.0)
    batch = batch_with_experts()
    counter = Counter(module)
    captured = {}
    original_pair_loss = module.pair_loss

    def spy(image_emb, text_emb, logit_scale):
        captured.update(image=image_emb, text=text_emb)
        return original_pair_loss(image_emb, text_emb, logit_scale)

    out = module(batch)
    with mock.patch.object(module, "pair_loss", side_effect=spy):
        terms = module.compute_losses(batch, out)
    assert len(counter.image_inputs) == 2  # the main forward + ONE expert forward
    assert captured["image"].shape == (N + M, module.model.embed_dim) == captured["text"].shape
    torch.testing.assert_close(captured["image"][:N], out.image_emb)  # main pairs first, untouched
    # The loss is clip_loss on the concatenated embeddings, and those are the towers' outputs.
    expert_text = module.model.encode_text(batch["expert"]["input_ids"], batch["expert"]["attention_mask"])
    expert_image = module.model.encode_image(counter.image_inputs[1])
    torch.testing.assert_close(captured["text"][N:], expert_text)
    torch.testing.assert_close(captured["image"][N:], expert_image)
    expected = clip_loss(torch.cat([out.image_emb, expert_image]), torch.cat([out.text_emb, expert_text]), out.logit_scale)
    torch.testing.assert_close(terms["clip_loss"], expected)
    assert int(module.expert_pairs_seen) == M
    assert counter.processor_calls == (1 if method == "eclip" else 0)


def test_mixup_input_is_a_convex_combination_of_image_and_expert_image():
    module = make_module(use_curriculum=False, priming_weight=0.0)
    batch = batch_with_experts()
    counter = Counter(module)
    module.compute_losses(batch, module(batch))
    mixed = counter.image_inputs[1].flatten(1)  # (M, C·H·W) — the expert forward's input
    image = batch["expert"]["image"].flatten(1)
    processed = module.processor(batch["expert"]["image"], batch["expert"]["heatmap"]).detach().flatten(1)
    # Solve mixed = λ·image + (1−λ)·processed for λ per sample; the residual must vanish.
    direction = image - processed
    lam = ((mixed - processed) * direction).sum(1) / (direction * direction).sum(1)
    residual = mixed - (processed + lam[:, None] * direction)
    assert residual.abs().max() < 1e-4
    assert ((lam >= -1e-5) & (lam <= 1 + 1e-5)).all() and lam.std() > 0  # per-sample λ in [0, 1]
    # One draw per sample keyed by (expert_seed 0, step 0, micro-batch 0, kind 1 = λ, manifest row).
    expected = [np.random.default_rng([0, 0, 0, 1, row]).beta(0.3, 0.3) for row in range(1000, 1000 + M)]
    np.testing.assert_allclose(lam.numpy(), expected, atol=1e-4)


def test_no_mixup_uses_the_processed_image_and_per_batch_lambda_is_shared():
    module = make_module(use_curriculum=False, priming_weight=0.0, mixup_alpha=0.0)
    batch = batch_with_experts()
    counter = Counter(module)
    module.compute_losses(batch, module(batch))
    processed = module.processor(batch["expert"]["image"], batch["expert"]["heatmap"]).detach()
    torch.testing.assert_close(counter.image_inputs[1], processed)
    shared = make_module(mixup_per_sample=False)
    lam = shared._mixup_lambdas([3, 9, 4, 7, 1], step=0)
    assert lam.shape == (5, 1, 1, 1) and (lam == lam[0]).all() and 0 < float(lam[0]) < 1


def test_random_heatmaps_replace_the_expert_ones():
    module = make_module(use_curriculum=False, priming_weight=0.0, random_heatmaps=True, processor="mask", mixup_alpha=0.0)
    batch = batch_with_experts()
    counter = Counter(module)
    module.compute_losses(batch, module(batch))
    fed = counter.image_inputs[1]
    with_expert = module.processor(batch["expert"]["image"], batch["expert"]["heatmap"])
    assert not torch.allclose(fed, with_expert)
    ratio = fed / batch["expert"]["image"]  # mask processor: the heatmap itself, peak 1 per sample
    assert ratio.amax(dim=(1, 2, 3)).sub(1).abs().max() < 1e-4 and ratio.min() >= -1e-6


def test_priming_term_and_weights_in_the_cold_start():
    module = make_module(priming_weight=0.1)
    assert module.expert_probability_at(0) == 0.0 and module.priming_active(0)
    assert not module.priming_active(10)  # progress 0.1: the cold start is over
    batch = make_batch(N, 0)
    out = module(batch)
    terms = module.compute_losses(batch, out)
    reconstruction = module.processor(batch["image"], torch.ones(N, 1, SIZE, SIZE))
    expected_mse = ((reconstruction - batch["image"]) ** 2).mean()
    torch.testing.assert_close(terms["priming_loss"], 0.1 * expected_mse)
    torch.testing.assert_close(terms["clip_loss"], 0.9 * clip_loss(out.image_emb, out.text_emb, out.logit_scale))
    assert not make_module(processor="mask").priming_active(0)  # nothing to prime


def smooth_images(n: int, seed: int) -> torch.Tensor:
    """Radiograph-like smooth images: upsampled low-resolution noise, gray repeated to 3 channels."""
    coarse = torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(coarse, size=(SIZE, SIZE), mode="bilinear", align_corners=False).expand(-1, 3, -1, -1)


def test_priming_drives_the_processor_towards_identity():
    """Steps on the module's priming term alone cut MSE(I, processor(I, 1)) far below its start."""
    module = make_module(processor_kwargs={"patch_size": 8, "width": 64, "num_heads": 4})
    optimizer = torch.optim.AdamW(module.processor.parameters(), lr=3e-3)
    batch = make_batch(8, 0)
    with torch.no_grad():
        out = module(batch)  # the towers are not what priming trains
    ones = torch.ones(8, 1, SIZE, SIZE)
    held_out = smooth_images(8, 99)
    mse = lambda x: float(((module.processor(x, ones) - x) ** 2).mean())
    before = mse(held_out)
    for step in range(80):
        terms = module.compute_losses({**batch, "image": smooth_images(8, step)}, out)
        optimizer.zero_grad()
        terms["priming_loss"].backward()
        optimizer.step()
    after = mse(held_out)
    assert after < 0.2 * before, (before, after)  # ≈ 7× lower after 80 steps (0.52 → 0.07)


def test_processor_has_its_own_parameter_group_at_scaled_lr():
    module = make_module(lr=1e-4, processor_lr_scale=2.0)
    groups = module.param_groups()
    processor_ids = {id(p) for p in module.processor.parameters()}
    proc_groups = [g for g in groups if any(id(p) in processor_ids for p in g["params"])]
    assert len(proc_groups) == 2 and all(g["lr"] == 2e-4 for g in proc_groups)
    assert all(all(id(p) in processor_ids for p in g["params"]) for g in proc_groups)
    assert sum(len(g["params"]) for g in groups) == len(list(module.parameters()))
    assert len(make_module(processor="mask").param_groups()) == 2  # no empty processor groups


def test_curriculum_probability_follows_progress_and_method():
    module = make_module()
    assert [module.expert_probability_at(s) for s in (0, 10, 40, 80, 99)] == pytest.approx([0, 0.05, 0.5, 0.1, 0.1])
    assert make_module(curriculum={"floor": 0.05}).expert_probability_at(90) == pytest.approx(0.05)
    assert make_module(method="naive").expert_probability_at(0) == 1.0
    assert make_module(use_curriculum=False).expert_probability_at(0) == 1.0


def test_expert_decision_is_a_pure_seeded_bernoulli():
    draws = [expert_decision(3, step, 0.3) for step in range(4000)]
    torch.manual_seed(123)
    np.random.seed(5)
    assert draws == [expert_decision(3, step, 0.3) for step in range(4000)]  # global RNGs play no part
    assert abs(np.mean(draws) - 0.3) < 0.03  # sd ≈ 0.007
    assert draws != [expert_decision(4, step, 0.3) for step in range(4000)]
    assert not any(expert_decision(0, s, 0.0) for s in range(100)) and all(expert_decision(0, s, 1.0) for s in range(100))


def test_missing_expert_batch_and_bad_arguments_raise():
    module = make_module(use_curriculum=False)
    batch = make_batch(N, 0)
    with pytest.raises(ValueError, match="data.expert_stream: true"):
        module.compute_losses(batch, module(batch))
    with pytest.raises(ValueError, match="model.method must be one of"):
        ECLIPModule(preset="tiny", vocab_size=VOCAB, method="eclipse")
    with pytest.raises(ValueError, match="model.priming_weight"):
        ECLIPModule(preset="tiny", vocab_size=VOCAB, priming_weight=1.0)
    with pytest.raises(ValueError, match="unknown curriculum key"):
        ECLIPModule(preset="tiny", vocab_size=VOCAB, curriculum={"cooldwn": 0.2})


def test_combined_batch_is_unpacked_for_training_step():
    module = make_module(use_curriculum=False, priming_weight=0.0)
    seen = {}
    with mock.patch.object(ContrastiveModule, "training_step", lambda self, b, i: seen.update(b) or torch.tensor(0.0)), \
         mock.patch.object(module, "log_dict"):
        module.training_step({"main": make_batch(N, 0), "expert": make_batch(M, 1)}, 0)
    assert seen["image"].shape[0] == N and seen["expert"]["image"].shape[0] == M


def test_priming_phase_follows_the_curriculum_cold_start_unless_set():
    """The paper: priming "coincides with the curriculum learning's cold start"."""
    follows = make_module(curriculum={"cold_start": 0.3, "warmup": 0.3, "cooldown": 0.3})
    assert [follows.priming_active(s) for s in (0, 29, 30, 60)] == [True, True, False, False]
    assert follows.expert_probability_at(29) == 0.0 and follows.expert_probability_at(30) > 0  # same boundary
    explicit = make_module(curriculum={"cold_start": 0.3, "warmup": 0.3, "cooldown": 0.3}, priming_fraction=0.05)
    assert [explicit.priming_active(s) for s in (0, 4, 5, 29)] == [True, True, False, False]
    assert not make_module(priming_fraction=0.0).priming_active(0)


def _expert_tower_input(module: ECLIPModule, batch: dict, batch_idx: int) -> torch.Tensor:
    counter = Counter(module)
    with mock.patch.object(module, "log_dict"), mock.patch.object(module, "log"):
        module.training_step({"main": {k: v for k, v in batch.items() if k != "expert"}, "expert": batch["expert"]}, batch_idx)
    return counter.image_inputs[1]  # [0] is the main forward


def test_each_accumulated_micro_batch_draws_its_own_lambda_and_random_heatmaps():
    """accumulate_grad_batches = 2: batch indices 0 and 1 share global step 0 but not λ / heatmaps."""
    module = make_module(trainer_kwargs={"accumulate_grad_batches": 2}, use_curriculum=False, priming_weight=0.0,
                         processor="mask", random_heatmaps=True)
    batch = batch_with_experts()
    first, second = (_expert_tower_input(module, batch, i) for i in (0, 1))
    assert module.global_step == 0 and not torch.allclose(first, second)
    lam = [torch.tensor([np.random.default_rng([0, 0, micro, 1, row]).beta(0.3, 0.3) for row in range(1000, 1000 + M)])
           for micro in (0, 1)]
    assert not torch.allclose(lam[0], lam[1])
    for fed, micro in ((first, 0), (second, 1)):
        # mask processor: fed = λ·I + (1 − λ)·I·H_rand, so H_rand = (fed/I − λ) / (1 − λ) must be a peak-1 heatmap
        image, l = batch["expert"]["image"], lam[micro].view(M, 1, 1, 1)
        heat = ((fed / image - l) / (1 - l)).mean(1)
        torch.testing.assert_close(heat.amax(dim=(1, 2)), torch.ones(M), atol=2e-3, rtol=0)
    again = _expert_tower_input(module, batch, 2)  # batch 2 opens the next accumulation window: micro-batch 0
    torch.testing.assert_close(again, first)


def test_an_idle_processor_stays_in_the_graph_and_its_zero_gradients_are_dropped():
    """Plain DDP needs a gradient for every parameter; AdamW must still skip the idle processor."""
    module = make_module(curriculum={"cold_start": 1.0, "warmup": 0.0, "cooldown": 0.0}, priming_weight=0.0)
    batch = batch_with_experts()
    out = module(batch)
    terms = module.compute_losses(batch, out)
    torch.testing.assert_close(terms["clip_loss"], clip_loss(out.image_emb, out.text_emb, out.logit_scale), rtol=0, atol=0)
    terms["clip_loss"].backward()
    grads = [p.grad for p in module.processor.parameters()]
    assert all(g is not None and not g.any() for g in grads)  # in the graph, at zero weight
    module.on_before_optimizer_step(None)
    assert all(p.grad is None for p in module.processor.parameters())  # as if it had not run
    used = make_module(use_curriculum=False, priming_weight=0.0)
    used.compute_losses(batch, used(batch))["clip_loss"].backward()
    used.on_before_optimizer_step(None)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in used.processor.parameters())


def test_duplicate_masking_removes_the_other_copy_from_the_negatives():
    module = make_module(use_curriculum=False, priming_weight=0.0, mask_duplicate_positive=True)
    batch = {**make_batch(N, 0), "expert": make_batch(M, 1, first_index=0)}  # expert rows repeat main rows 0..3
    out = module(batch)
    counter = Counter(module)
    terms = module.compute_losses(batch, out)
    expert_image = module.model.encode_image(counter.image_inputs[0])
    expert_text = module.model.encode_text(batch["expert"]["input_ids"], batch["expert"]["attention_mask"])
    image, text = torch.cat([out.image_emb, expert_image]), torch.cat([out.text_emb, expert_text])
    ids = list(range(N)) + list(range(M))
    total, scale = N + M, out.logit_scale
    nll = []
    for i in range(total):  # hand-written: softmax over the positive and the columns of other pairs
        keep = [j for j in range(total) if j == i or ids[j] != ids[i]]
        for q, keys in ((image[i], text), (text[i], image)):
            nll.append(torch.logsumexp(scale * keys[keep] @ q, 0) - scale * q @ keys[i])
    torch.testing.assert_close(terms["clip_loss"], torch.stack(nll).mean())
    assert abs(float(terms["clip_loss"]) - float(clip_loss(image, text, scale))) > 1e-4


def test_duplicate_masking_refuses_siglip():
    from medalign.training.eclip import ECLIPModule

    with pytest.raises(ValueError, match="cannot be combined with the SigLIP objective"):
        ECLIPModule(vocab_size=50, mask_duplicate_positive=True, loss="siglip")


def test_expert_views_leave_batchnorm_running_statistics_alone():
    """`tiny_cnn` (a ResNet): the expert forward normalises with its batch's statistics and updates no running buffer."""
    torch.manual_seed(0)
    module = attach(ECLIPModule(preset="tiny_cnn", vocab_size=VOCAB, mixup_alpha=0.0))
    module.train()
    layers = [m for m in module.model.image_encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert layers
    before = {k: v.clone() for k, v in module.model.image_encoder.state_dict().items()}
    expert = make_batch(M, 1, first_index=1000)
    with torch.no_grad():
        got = module.expert_embeddings(expert, step=0)
        after = module.model.image_encoder.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)  # running mean / var / batch count unchanged
        assert all(layer.track_running_stats for layer in layers)
        # the reference: the same forward with the usual training-mode BatchNorm (which does update the buffers)
        image = module.processor(expert["image"], expert["heatmap"])
        reference = module.model.encode_image(image)
        moved = module.model.image_encoder.state_dict()
    torch.testing.assert_close(got, reference)
    assert any(not torch.equal(before[k], moved[k]) for k in before if k.endswith("running_mean"))
    main = module(make_batch(N, 0))  # the main stream still updates them
    assert main.image_emb.shape == (N, module.model.embed_dim)
