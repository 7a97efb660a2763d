"""The PFN transformer, read top to bottom.

Legend: B datasets, R rows, T training rows (the rest are test rows), F features, E embedding width,
H heads, C classes, N buckets of the regression head.

Each row of a dataset is one token: an encoding of its features, plus, for training rows, an encoding
of its target. In every layer all rows attend to the training rows only (training rows to each other,
test rows to training rows), so a test row never sees another test row and no positional encoding is
needed: the prediction for a row does not depend on the order of the others. Features and targets are
standardised per dataset with training-row statistics; the regression log-density is returned in the
original units (the change of variables adds -log σ_y).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pfnforge.errors import ConfigError
from pfnforge.model.bar import BarDistribution


@dataclass(kw_only=True)
class ModelConfig:
    """Size of a PFN; named presets live in ``configs/model/``."""

    embed_dim: int = 128
    """Token width E."""
    num_layers: int = 4
    """Transformer layers."""
    num_heads: int = 4
    """Attention heads H (must divide embed_dim)."""
    mlp_ratio: int = 2
    """Hidden width of each layer's MLP, in multiples of embed_dim."""
    max_features: int = 10
    """Largest number of features a dataset may have; narrower ones are zero-padded."""
    max_classes: int = 10
    """Largest number of classes of a classification dataset."""
    num_buckets: int = 100
    """Buckets of the regression head's bar distribution (fewer if the prior's targets tie)."""
    dropout: float = 0.0
    """Dropout in attention and MLP (0 for PFN pretraining, where data never repeats)."""
    enable_standardization: bool = True
    """Standardise features and targets per dataset with training-row statistics. ``false`` feeds them raw
    (bucket borders are then fitted on raw targets): for priors whose scale is fixed and informative, e.g. a
    GP with fixed hyperparameters, where distances between inputs and the size of the targets carry
    information that standardising removes, and one context point has no spread to standardise by."""

    def __post_init__(self) -> None:
        for name in ("embed_dim", "num_layers", "num_heads", "mlp_ratio", "max_features", "num_buckets"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name}={getattr(self, name)} is out of range: it must be >= 1")
        if self.embed_dim % self.num_heads:
            raise ConfigError(f"model.num_heads={self.num_heads} must divide model.embed_dim={self.embed_dim}")
        if self.max_classes < 2:
            raise ConfigError(f"model.max_classes={self.max_classes} is out of range: it must be >= 2")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"model.dropout={self.dropout} is out of range: it must lie in [0, 1)")


def target_scale(y_BT: torch.Tensor, enable_standardization: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 1) mean and std the regression head standardises targets by: the training rows' statistics, or
    0 and 1 when the model takes targets raw."""
    if not enable_standardization:
        return y_BT.new_zeros(y_BT.shape[0], 1), y_BT.new_ones(y_BT.shape[0], 1)
    return y_BT.mean(1, keepdim=True), spread(y_BT)


def spread(values_BT: torch.Tensor) -> torch.Tensor:
    """Standard deviation over dim 1 (the training rows), or 1 where it is degenerate (one training row, or all
    values equal): dividing by a vanishing spread would throw every test value to ±infinity."""
    std = values_BT.std(1, keepdim=True, unbiased=False)
    return torch.where(std > 1e-6, std, torch.ones_like(std))


class Layer(nn.Module):
    """Pre-norm attention of all rows onto the training rows, then an MLP."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        E = config.embed_dim
        self.num_heads = config.num_heads
        self.dropout = config.dropout
        self.norm_attention = nn.LayerNorm(E)
        self.query = nn.Linear(E, E)
        self.key_value = nn.Linear(E, 2 * E)
        self.out = nn.Linear(E, E)
        self.norm_mlp = nn.LayerNorm(E)
        self.mlp = nn.Sequential(nn.Linear(E, config.mlp_ratio * E), nn.GELU(), nn.Linear(config.mlp_ratio * E, E))

    def forward(self, h_BRE: torch.Tensor, num_train_rows: int) -> torch.Tensor:
        B, R, E = h_BRE.shape
        H = self.num_heads
        z_BRE = self.norm_attention(h_BRE)
        q_BHRD = self.query(z_BRE).view(B, R, H, E // H).transpose(1, 2)
        k_BTE, v_BTE = self.key_value(z_BRE[:, :num_train_rows]).chunk(2, dim=-1)
        k_BHTD = k_BTE.reshape(B, num_train_rows, H, E // H).transpose(1, 2)
        v_BHTD = v_BTE.reshape(B, num_train_rows, H, E // H).transpose(1, 2)
        a_BHRD = F.scaled_dot_product_attention(q_BHRD, k_BHTD, v_BHTD,
                                                dropout_p=self.dropout if self.training else 0.0)
        h_BRE = h_BRE + self.out(a_BHRD.transpose(1, 2).reshape(B, R, E))
        return h_BRE + F.dropout(self.mlp(self.norm_mlp(h_BRE)), self.dropout, self.training)


class PFN(nn.Module):
    """Maps (x, y of the training rows) to a predictive distribution for every test row."""

    def __init__(self, config: ModelConfig, borders: torch.Tensor | None, *, classification: bool = False) -> None:
        """``borders``: the regression head's bucket borders (``None``: no regression head);
        ``classification``: whether to have a classification head. Only heads a prior needs exist, so
        data-parallel training never holds parameters that get no gradient."""
        super().__init__()
        self.config = config
        E = config.embed_dim
        self.encode_x = nn.Linear(2 * config.max_features, E)  # values and missing-value indicators
        self.encode_y = nn.Linear(1, E)
        self.layers = nn.ModuleList(Layer(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(E)
        self.classification_head = nn.Linear(E, config.max_classes) if classification else None
        self.regression_head, self.bar = None, None
        if borders is not None:
            self.bar = BarDistribution(borders)
            self.regression_head = nn.Linear(E, self.bar.num_buckets)

    def forward(self, x_BRF: torch.Tensor, y_BR: torch.Tensor, num_train_rows: int,
                is_classification: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits of the test rows, (B, R - T, N or C), plus the target's per-dataset mean and std (B, 1)."""
        _, R, num_features = x_BRF.shape
        T = num_train_rows
        if num_features > self.config.max_features:
            raise ConfigError(f"datasets have {num_features} features; this model takes at most "
                              f"{self.config.max_features}: drop features or train with a larger model.max_features")
        if not 1 <= T < R:
            raise ConfigError(f"the split point {T} must leave at least one training and one test row of {R}")
        missing_BRF = torch.isnan(x_BRF)
        x_BRF = torch.nan_to_num(x_BRF)
        if self.config.enable_standardization:
            mean_B1F = x_BRF[:, :T].mean(1, keepdim=True)
            std_B1F = spread(x_BRF[:, :T])
            x_BRF = torch.where(missing_BRF, 0.0, ((x_BRF - mean_B1F) / std_B1F).clamp(-100, 100))
        pad = self.config.max_features - num_features
        tokens_BR2F = torch.cat([F.pad(x_BRF, (0, pad)), F.pad(missing_BRF.to(x_BRF.dtype), (0, pad))], -1)
        h_BRE = self.encode_x(tokens_BR2F)

        y_mean_B1, y_std_B1 = target_scale(y_BR[:, :T], self.config.enable_standardization)
        y_train_BT1 = (y_BR[:, :T] if is_classification else (y_BR[:, :T] - y_mean_B1) / y_std_B1).unsqueeze(-1)
        h_BRE = torch.cat([h_BRE[:, :T] + self.encode_y(y_train_BT1), h_BRE[:, T:]], dim=1)

        for layer in self.layers:
            h_BRE = layer(h_BRE, T)
        h_test_BTE = self.norm(h_BRE[:, T:])
        head = self.classification_head if is_classification else self.regression_head
        if head is None:
            kind = "classification" if is_classification else "regression"
            raise ConfigError(f"this model has no {kind} head: train it on a prior with {kind} datasets")
        return head(h_test_BTE), y_mean_B1, y_std_B1

    def test_log_likelihood(self, x_BRF: torch.Tensor, y_BR: torch.Tensor, num_train_rows: int,
                            num_classes: torch.Tensor) -> torch.Tensor:
        """(B, R - T) log-likelihood of the test targets, in the targets' own units."""
        is_classification = bool(num_classes[0] > 0)
        if bool((num_classes > 0).any()) and bool((num_classes == 0).any()):
            raise ConfigError("this batch mixes regression and classification datasets; a step trains one head: "
                              "mix such priors per batch (prior.per=batch)")
        logits, y_mean_B1, y_std_B1 = self(x_BRF, y_BR, num_train_rows, is_classification)
        y_test_BT = y_BR[:, num_train_rows:]
        if is_classification:
            mask_C = torch.arange(self.config.max_classes, device=logits.device)[None, None, :] \
                >= num_classes[:, None, None]
            log_probs = torch.log_softmax(logits.float().masked_fill(mask_C, float("-inf")), dim=-1)
            return log_probs.gather(-1, y_test_BT.long().unsqueeze(-1)).squeeze(-1)
        z_BT = (y_test_BT - y_mean_B1) / y_std_B1
        return self.bar.log_density(logits, z_BT) - torch.log(y_std_B1)
