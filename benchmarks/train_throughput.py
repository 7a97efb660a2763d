"""CPU training throughput of pfnforge's training step vs the ``pfns`` package's own training loop.

    pip install pfns==0.4.2 torch==2.13.0   # benchmark-only dependency; keep the installed torch
    python benchmarks/train_throughput.py [--steps 30] [--warmup 5] [--rounds 2] [--threads 2]

Both sides train a regression PFN of the same size (embed width, layers, heads, MLP width, bar buckets) on
batches of the same shape (B datasets x R rows x F features, split after T training rows), in float32,
with AdamW and gradient clipping at 1.0, on ``--threads`` torch threads, in the same process. Each round
runs pfnforge, then pfns (``--rounds`` alternations, so drift of a shared machine hits both); the figures
are medians over all timed steps (the first ``--warmup`` steps of each round are dropped).

- pfnforge: ``pfnforge.model.pfn.PFN`` with borders from ``pfnforge.model.bar.fit_borders``; one step is
  ``-model.test_log_likelihood(...).mean()``, backward, ``clip_grad_norm_(1.0)``, ``AdamW.step``,
  ``zero_grad`` (the body of ``PFNModule.training_step`` plus Lightning's optimiser step, without the
  Lightning Trainer around it). Data: pfnforge's ``gp`` prior, drawn in the loop.
- pfns: ``pfns.train.train`` itself (its data loader with ``num_workers=0``, its epoch loop), model from
  ``TransformerConfig(features_per_group=F, attention_between_features=False)``: the original PFN
  architecture, one token per row. Data: ``pfns.priors.fast_gp.get_batch`` (``--pfns-prior gp``: the
  sklearn ``pfns.priors.gp``), borders from ``pfns.model.bar_distribution.get_bucket_borders``, the
  ``full_support`` bar distribution (half-normal tails; the bounded one asserts on targets outside the
  fitted borders). Steps are timed from the outside: a global optimiser step post-hook stamps the end of each step and a
  wrapper around the prior's ``get_batch`` stamps the end of each draw.

Columns: "step" = forward + loss + backward + clip + optimiser step (for pfns: from the end of the
batch draw to the end of ``optimizer.step``, so it includes pfns' per-step bookkeeping such as its
gradient-magnitude statistics); "with data" = the whole step including drawing the batch from the
prior (end of one optimiser step to the end of the next). Datasets/s = B / median seconds per step.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time
import traceback

import numpy as np
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook


def pfnforge_round(args: argparse.Namespace, seed: int) -> tuple[list[float], list[float], int]:
    """Per-step seconds (step only, with data) of pfnforge's step, and its parameter count."""
    from pfnforge import registry
    from pfnforge.model.bar import fit_borders
    from pfnforge.model.pfn import PFN, ModelConfig
    from pfnforge.prior import BatchShape

    B, R, F, T = args.datasets, args.rows, args.features, args.train_rows
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    prior = registry.load_prior_class("gp")()
    shape = BatchShape(num_datasets=B, num_rows=R, num_features=F, num_train_rows=T)
    border_ys = np.concatenate([prior.sample(rng, shape).y.ravel() for _ in range(8)])
    borders = fit_borders(torch.from_numpy(border_ys), args.buckets)
    config = ModelConfig(embed_dim=args.embed, num_layers=args.layers, num_heads=args.heads,
                         mlp_ratio=args.mlp_hidden // args.embed, max_features=F, num_buckets=args.buckets)
    model = PFN(config, borders, classification=False)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    num_classes_B = torch.zeros(B, dtype=torch.int32)

    step_s, total_s = [], []
    for _ in range(args.warmup + args.steps):
        start = time.perf_counter()
        batch = prior.sample(rng, shape)
        x_BRF = torch.from_numpy(np.ascontiguousarray(batch.x, dtype=np.float32))
        y_BR = torch.from_numpy(np.ascontiguousarray(batch.y, dtype=np.float32))
        drawn = time.perf_counter()
        loss = -model.test_log_likelihood(x_BRF, y_BR, T, num_classes_B).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        float(loss.detach())  # what logging the loss costs
        end = time.perf_counter()
        step_s.append(end - drawn)
        total_s.append(end - start)
    if not np.isfinite(float(loss.detach())):
        raise RuntimeError(f"pfnforge loss is not finite: {float(loss.detach())}")
    return step_s[args.warmup:], total_s[args.warmup:], sum(p.numel() for p in model.parameters())


def pfns_round(args: argparse.Namespace, seed: int) -> tuple[list[float], list[float], int]:
    """Per-step seconds (step only, with data) of ``pfns.train.train``, and its parameter count."""
    from dataclasses import dataclass

    from pfns.batch_shape_sampler import BatchShape as PfnsBatchShape
    from pfns.batch_shape_sampler import BatchShapeSamplerConfig
    from pfns.model.bar_distribution import get_bucket_borders
    from pfns.model.criterions import BarDistributionConfig
    from pfns.model.transformer_config import TransformerConfig
    from pfns.optimizer import OptimizerConfig
    from pfns.priors.prior import AdhocPriorConfig
    from pfns.train import MainConfig, train

    B, R, F, T = args.datasets, args.rows, args.features, args.train_rows

    @dataclass(frozen=True)
    class FixedBatchShape(BatchShapeSamplerConfig):
        """pfns' sampler draws the split point and feature count per step; this one fixes them."""

        single_eval_pos: int = 0

        def sample_batch_shape(self, epoch: int, step: int) -> PfnsBatchShape:
            return PfnsBatchShape(batch_size=self.batch_size, seq_len=self.max_seq_len,
                                  num_features=self.max_num_features, single_eval_pos=self.single_eval_pos)

    if args.pfns_prior == "fast_gp":
        from pfns.priors import fast_gp as pfns_prior
        prior_kwargs = {"hyperparameters": {"noise": 0.1, "outputscale": 1.0, "lengthscale": 0.3}}
    else:
        from pfns.priors import gp as pfns_prior
        prior_kwargs = {}

    drawn_at: list[float] = []

    def timed_get_batch(**kwargs):
        batch = pfns_prior.get_batch(**kwargs)
        drawn_at.append(time.perf_counter())
        return batch

    torch.manual_seed(seed)
    border_ys = torch.cat([pfns_prior.get_batch(batch_size=B, seq_len=R, num_features=F, **prior_kwargs).y.flatten()
                           for _ in range(8)])
    borders = get_bucket_borders(args.buckets, ys=border_ys)
    config = MainConfig(
        priors=[AdhocPriorConfig(get_batch_methods=timed_get_batch, prior_kwargs=prior_kwargs)],
        optimizer=OptimizerConfig(optimizer="adamw", lr=1e-4),
        model=TransformerConfig(criterion=BarDistributionConfig(borders=borders.tolist(), full_support=True),
                                emsize=args.embed, nhid=args.mlp_hidden, nlayers=args.layers, nhead=args.heads,
                                features_per_group=F, attention_between_features=False),
        batch_shape_sampler=FixedBatchShape(batch_size=B, max_seq_len=R, min_num_features=F, max_num_features=F,
                                            single_eval_pos=T),
        epochs=1,
        steps_per_epoch=args.warmup + args.steps,
        train_mixed_precision=False,  # float32, as pfnforge (and CPU autocast would be bfloat16)
        scheduler="constant",
        verbose=False,
        num_workers=0,  # draw batches in the training process, as the pfnforge side does
    )

    step_ends: list[float] = []
    handle = register_optimizer_step_post_hook(
        lambda optimizer, args, kwargs: step_ends.append(time.perf_counter()))
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log):
            started = time.perf_counter()
            result = train(config, device="cpu", reusable_config=False)
    except Exception:
        print(log.getvalue())
        raise
    finally:
        handle.remove()
    n = args.warmup + args.steps
    if len(step_ends) != n or len(drawn_at) != n:
        raise RuntimeError(f"expected {n} pfns steps, saw {len(step_ends)} optimiser steps, {len(drawn_at)} draws")
    if not np.isfinite(result["total_loss"]):
        raise RuntimeError(f"pfns loss is not finite: {result['total_loss']}")
    previous = [started, *step_ends[:-1]]
    step_s = [end - drawn for end, drawn in zip(step_ends, drawn_at, strict=True)]
    total_s = [end - prev for end, prev in zip(step_ends, previous, strict=True)]
    return step_s[args.warmup:], total_s[args.warmup:], sum(p.numel() for p in result["model"].parameters())


def cpu_name() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per round and side")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps at the start of each round")
    parser.add_argument("--rounds", type=int, default=2, help="alternations pfnforge, pfns")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for both sides")
    parser.add_argument("--datasets", type=int, default=64, help="B")
    parser.add_argument("--rows", type=int, default=100, help="R")
    parser.add_argument("--features", type=int, default=5, help="F")
    parser.add_argument("--train-rows", type=int, default=50, help="T, the split point")
    parser.add_argument("--embed", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--mlp-hidden", type=int, default=256, help="a multiple of --embed")
    parser.add_argument("--buckets", type=int, default=100)
    parser.add_argument("--pfns-prior", choices=["fast_gp", "gp"], default="fast_gp")
    args = parser.parse_args()
    if args.mlp_hidden % args.embed:
        parser.error("--mlp-hidden must be a multiple of --embed (pfnforge's MLP width is mlp_ratio * embed_dim)")
    torch.set_num_threads(args.threads)

    from importlib.metadata import version

    times: dict[str, tuple[list[float], list[float]]] = {"pfnforge": ([], []), "pfns": ([], [])}
    params = {}
    for r in range(args.rounds):
        for name, run in (("pfnforge", pfnforge_round), ("pfns", pfns_round)):
            try:
                step_s, total_s, params[name] = run(args, seed=r)
            except Exception:
                traceback.print_exc()
                raise SystemExit(f"{name} round {r} failed") from None
            times[name][0].extend(step_s)
            times[name][1].extend(total_s)
            print(f"round {r} {name}: median step {statistics.median(step_s) * 1e3:.1f} ms, "
                  f"with data {statistics.median(total_s) * 1e3:.1f} ms", flush=True)

    B = args.datasets
    rate = {name: (B / statistics.median(s), B / statistics.median(t)) for name, (s, t) in times.items()}
    print()
    print(f"torch {torch.__version__}, pfns {version('pfns')}, {cpu_name()}, "
          f"{args.threads} threads; B x R x F = {B} x {args.rows} x {args.features}, T = {args.train_rows}; "
          f"E={args.embed}, {args.layers} layers, {args.heads} heads, MLP {args.mlp_hidden}, {args.buckets} buckets; "
          f"{args.rounds} rounds x {args.steps} timed steps (+{args.warmup} warm-up) per side; "
          f"pfns prior: pfns.priors.{args.pfns_prior}")
    print()
    print("| side | parameters | step datasets/s | with data datasets/s | step ms (median) | with data ms (median) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, (step_rate, total_rate) in rate.items():
        print(f"| {name} | {params[name]:,} | {step_rate:,.0f} | {total_rate:,.0f} | {B / step_rate * 1e3:.1f} "
              f"| {B / total_rate * 1e3:.1f} |")
    print(f"| pfnforge / pfns | {params['pfnforge'] / params['pfns']:.2f} | "
          f"{rate['pfnforge'][0] / rate['pfns'][0]:.2f} | {rate['pfnforge'][1] / rate['pfns'][1]:.2f} | | |")


if __name__ == "__main__":
    main()
