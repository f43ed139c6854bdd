"""Pieces shared by the training-step benchmarks (bench_train_step, bench_methods, bench_eclip_overhead)."""

from __future__ import annotations

import argparse

import torch


def add_model_arguments(parser: argparse.ArgumentParser, vocab: int = 1000) -> None:
    """The model/batch options every step benchmark takes: preset, batch, image size, report length, vocab."""
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--length", type=int, default=64, help="tokens per report")
    parser.add_argument("--vocab", type=int, default=vocab)


def module_step(module: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict) -> None:
    """One optimizer step of a medalign module outside Lightning: every loss term, backward, step.

    Calls the module's ``on_before_optimizer_step`` as Lightning would (eCLIP drops an idle
    processor's zero gradients there) and waits for CUDA so the caller's timer is honest.
    """
    out = module(batch)
    terms = module.loss_terms(batch, out)
    optimizer.zero_grad(set_to_none=True)
    torch.stack(list(terms.values())).sum().backward()
    module.on_before_optimizer_step(optimizer)
    optimizer.step()
    if batch["image"].is_cuda:
        torch.cuda.synchronize()
