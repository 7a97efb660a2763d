"""Summaries of a bar distribution given as bucket probabilities (an ensemble's average): mean, median and
quantiles, with the same half-normal tails as ``pfnforge.model.bar.BarDistribution.log_density``.

Legend: T test rows, N buckets, Q quantile levels.
"""

from __future__ import annotations

import torch

from pfnforge.model.bar import BarDistribution


def bar_mean(bar: BarDistribution, probs_TN: torch.Tensor) -> torch.Tensor:
    """(T,) predictive mean of bucket probabilities (the mean of ``bar.mean`` for logits = log probs)."""
    return bar.mean(torch.log(probs_TN.clamp_min(1e-30)))


def bar_quantiles(bar: BarDistribution, probs_TN: torch.Tensor, levels_Q: torch.Tensor) -> torch.Tensor:
    """(T, Q) quantiles at ``levels_Q`` (each in (0, 1)): bucket 0 is a half-normal below ``borders[1]``,
    bucket N-1 one above ``borders[-2]``, inner buckets are uniform."""
    borders = bar.borders.double()
    probs_TN = probs_TN.double() / probs_TN.double().sum(-1, keepdim=True)
    levels_Q = levels_Q.double()
    widths_N = borders[1:] - borders[:-1]
    cdf_TN = torch.cumsum(probs_TN, -1)  # mass up to and including each bucket
    T, Q = probs_TN.shape[0], levels_Q.numel()
    q_TQ = levels_Q.expand(T, Q).contiguous()
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))

    # inner buckets: linear interpolation of the CDF
    bucket_TQ = torch.searchsorted(cdf_TN, q_TQ, right=False).clamp(0, bar.num_buckets - 1)
    below_TQ = torch.where(bucket_TQ > 0, cdf_TN.gather(-1, (bucket_TQ - 1).clamp_min(0)), torch.zeros_like(q_TQ))
    mass_TQ = probs_TN.gather(-1, bucket_TQ).clamp_min(1e-300)
    inner_TQ = borders[bucket_TQ] + (q_TQ - below_TQ) / mass_TQ * widths_N[bucket_TQ]

    # tails: P(Y < b1 - s t) = p0 · 2(1 - Φ(t)), P(Y > b_{N-1} + s t) = p_{N-1} · 2(1 - Φ(t))
    p_left_T1, p_right_T1 = probs_TN[:, :1].clamp_min(1e-300), probs_TN[:, -1:].clamp_min(1e-300)
    tiny = 1e-12
    t_left = normal.icdf((1 - q_TQ / (2 * p_left_T1)).clamp(0.5, 1 - tiny))
    t_right = normal.icdf((1 - (1 - q_TQ) / (2 * p_right_T1)).clamp(0.5, 1 - tiny))
    left_TQ = borders[1] - widths_N[0] * t_left
    right_TQ = borders[-2] + widths_N[-1] * t_right
    result = torch.where(bucket_TQ == 0, left_TQ, torch.where(bucket_TQ == bar.num_buckets - 1, right_TQ, inner_TQ))
    return result.float()

