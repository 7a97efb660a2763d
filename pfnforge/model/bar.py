"""The bar (Riemann) distribution: a predictive density that is piecewise constant over fitted buckets,
with half-normal tails on the outer buckets so that every real value has positive density.

Legend: B datasets, T test rows, N buckets.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pfnforge.errors import ConfigError


def fit_borders(samples: torch.Tensor, num_buckets: int) -> torch.Tensor:
    """(N + 1,) bucket borders at equal-mass quantiles of ``samples`` (targets drawn from the prior).

    The outer borders are not the samples' extremes: each outer bucket is as wide as its inner neighbour.
    Its width is the scale of that bucket's half-normal tail, so a heavy-tailed prior (a few datasets with
    targets tens of standard deviations out) would otherwise give the tails a scale that drags every
    predictive mean by the little mass the model leaves there.
    """
    values = samples.flatten().double()
    values = values[torch.isfinite(values)]
    if values.numel() < num_buckets:
        raise ConfigError(f"need at least {num_buckets} finite target samples to fit {num_buckets} buckets: "
                          "lower model.num_buckets or draw larger batches")
    borders = torch.quantile(values, torch.linspace(0, 1, num_buckets + 1, dtype=torch.float64))
    borders = torch.unique(borders)
    if borders.numel() < 2:
        raise ConfigError("all target samples of the prior are equal: a regression head needs targets that vary "
                          "(check the prior's config)")
    if borders.numel() >= 4:
        borders[0] = borders[1] - (borders[2] - borders[1])
        borders[-1] = borders[-2] + (borders[-2] - borders[-3])
    return borders.float()


class BarDistribution(nn.Module):
    """Log-density of targets under bucket logits; buckets 0 and N-1 carry half-normal tails."""

    def __init__(self, borders: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("borders", borders.float().contiguous())

    @property
    def num_buckets(self) -> int:
        return self.borders.numel() - 1

    def log_density(self, logits_BTN: torch.Tensor, y_BT: torch.Tensor) -> torch.Tensor:
        """(B, T) log p(y) for logits over the N buckets."""
        borders = self.borders
        widths_N = borders[1:] - borders[:-1]
        log_probs_BTN = torch.log_softmax(logits_BTN.float(), dim=-1)
        bucket_BT = torch.clamp(torch.searchsorted(borders, y_BT.contiguous(), right=True) - 1, 0,
                                self.num_buckets - 1)
        log_p_BT = log_probs_BTN.gather(-1, bucket_BT.unsqueeze(-1)).squeeze(-1)
        inside_BT = log_p_BT - torch.log(widths_N[bucket_BT])
        # tails: the outer buckets spread their mass as half-normals beyond their inner border
        half_normal = 0.5 * math.log(2 / math.pi)
        left_scale, right_scale = widths_N[0], widths_N[-1]
        left_BT = log_probs_BTN[..., 0] + half_normal - torch.log(left_scale) \
            - 0.5 * ((borders[1] - y_BT) / left_scale) ** 2
        right_BT = log_probs_BTN[..., -1] + half_normal - torch.log(right_scale) \
            - 0.5 * ((y_BT - borders[-2]) / right_scale) ** 2
        return torch.where(y_BT < borders[1], left_BT, torch.where(y_BT >= borders[-2], right_BT, inside_BT))

    def mean(self, logits_BTN: torch.Tensor) -> torch.Tensor:
        """(B, T) predictive mean (tails contribute their half-normal means)."""
        probs_BTN = torch.softmax(logits_BTN.float(), dim=-1)
        centers_N = (self.borders[1:] + self.borders[:-1]) / 2
        widths_N = self.borders[1:] - self.borders[:-1]
        tail = math.sqrt(2 / math.pi)
        centers_N = centers_N.clone()
        centers_N[0] = self.borders[1] - tail * widths_N[0]
        centers_N[-1] = self.borders[-2] + tail * widths_N[-1]
        return probs_BTN @ centers_N
