"""The architecture plugin API: what every PFN network takes and gives, so that the trainer, the streams, the
registry, the estimators and the pyfunc model never name a concrete architecture.

Legend: B datasets, R rows, T training (context) rows, Q query (test) rows, F features, E embedding width,
C classes, N buckets of the regression head.

An architecture is an ``Architecture`` subclass with a ``name`` (its entry point in the ``pfnforge.models``
group) and a nested ``Config`` dataclass subclassing ``ArchitectureConfig``. It implements one pass,
``_embed``: the first rows are the context (their targets given), the rest are query rows that attend to the
context only; it returns the query rows' final embeddings and the context's per-layer state (keys and values).
Given a saved state instead, every row is a query row reading that state.

Query rows never influence context rows, so running the context once and query rows later gives exactly what
one pass over all rows gives: ``forward`` is the one pass (for training: each layer runs once, as FSDP wants),
and a fitted estimator keeps the ``Context`` of its training rows and runs only new query rows at ``predict``.
Features and targets are standardised per dataset with the training rows'
NaN-aware statistics (the same in training and inference); missing cells become 0 plus an indicator.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from pfnforge.errors import ConfigError
from pfnforge.model.bar import BarDistribution


@dataclass(kw_only=True)
class ArchitectureConfig:
    """Fields every architecture has; each architecture's ``Config`` adds its sizes."""

    max_features: int | None = 10
    """Largest number of features a dataset may have (``null``: no cap in the model; memory is the limit)."""
    max_classes: int = 10
    """Largest number of classes of a classification dataset (the classification head's width)."""
    num_buckets: int = 100
    """Buckets of the regression head's bar distribution (fewer if the prior's targets tie)."""
    dropout: float = 0.0
    """Dropout in attention and MLPs (0 for PFN pretraining, where data never repeats)."""
    enable_standardization: bool = True
    """Standardise features and targets per dataset with training-row statistics. ``false`` feeds them raw
    (bucket borders are then fitted on raw targets): for priors whose scale is fixed and informative, e.g. a
    GP with fixed hyperparameters, where distances between inputs and the size of the targets carry
    information that standardising removes, and one context point has no spread to standardise by."""
    target_spread_prior_weight: float = 1.0
    """With standardisation, how many training rows' worth of a unit variance the targets' spread is shrunk
    toward: the regression head divides by ``sqrt((T·s² + w) / (T + w))`` for T training rows of variance s²,
    so two nearly equal context targets do not throw every test target to the far tails (0: the plain
    standard deviation, 1 where it is below 1e-6)."""
    enable_activation_checkpointing: bool = False
    """Recompute each layer's activations in the backward pass instead of storing them: less memory for
    larger batches, about a third more compute."""

    def __post_init__(self) -> None:
        if self.max_features is not None and self.max_features < 1:
            raise ConfigError(f"model.max_features={self.max_features} is out of range: it must be >= 1 or null")
        if not self.target_spread_prior_weight >= 0:
            raise ConfigError(f"model.target_spread_prior_weight={self.target_spread_prior_weight} is out of range: "
                              "it must be >= 0 (0: no shrinkage)")
        if self.num_buckets < 1:
            raise ConfigError(f"model.num_buckets={self.num_buckets} is out of range: it must be >= 1")
        if self.max_classes < 2:
            raise ConfigError(f"model.max_classes={self.max_classes} is out of range: it must be >= 2")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"model.dropout={self.dropout} is out of range: it must lie in [0, 1)")

    def check_positive(self, *names: str) -> None:
        """Raise for any of ``names`` below 1."""
        for name in names:
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name}={getattr(self, name)} is out of range: it must be >= 1")

    def check_heads(self, width_name: str, heads_name: str = "num_heads") -> None:
        """Raise unless ``heads_name`` divides ``width_name``."""
        width, heads = getattr(self, width_name), getattr(self, heads_name)
        if width % heads:
            raise ConfigError(f"model.{heads_name}={heads} must divide model.{width_name}={width}")


@dataclass
class Context:
    """What the training rows of B datasets contribute to every prediction: their standardisation statistics
    and the architecture's per-layer state (keys and values). Reused for any number of query rows."""

    num_train_rows: int
    is_classification: bool
    x_mean_B1F: torch.Tensor
    x_std_B1F: torch.Tensor
    y_mean_B1: torch.Tensor
    y_std_B1: torch.Tensor
    state: dict[str, Any] = field(default_factory=dict)
    """Per architecture: tensors, or lists and tuples of tensors."""

    @property
    def nbytes(self) -> int:
        """Memory the context holds, in bytes."""
        def size(value: Any) -> int:
            if isinstance(value, torch.Tensor):
                return value.numel() * value.element_size()
            if isinstance(value, (list, tuple)):
                return sum(size(v) for v in value)
            if isinstance(value, dict):
                return sum(size(v) for v in value.values())
            return 0
        return sum(size(getattr(self, f.name)) for f in dataclasses.fields(self))


def target_scale(y_BT: torch.Tensor, config: ArchitectureConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 1) mean and spread the regression head standardises targets by: the training rows' mean and their
    variance shrunk toward 1 by ``config.target_spread_prior_weight`` pseudo-rows, or 0 and 1 when the model
    takes targets raw."""
    if not config.enable_standardization:
        return y_BT.new_zeros(y_BT.shape[0], 1), y_BT.new_ones(y_BT.shape[0], 1)
    weight, T = config.target_spread_prior_weight, y_BT.shape[1]
    if weight == 0:
        return y_BT.mean(1, keepdim=True), spread(y_BT)
    mean_B1 = y_BT.sum(1, keepdim=True) / max(T, 1)
    variance_B1 = ((y_BT - mean_B1) ** 2).sum(1, keepdim=True)
    return mean_B1, ((variance_B1 + weight) / (T + weight)).sqrt()


def spread(values_BT: torch.Tensor) -> torch.Tensor:
    """Standard deviation over dim 1 (the training rows), or 1 where it is degenerate (one training row, or all
    values equal): dividing by a vanishing spread would throw every test value to ±infinity."""
    std = values_BT.std(1, keepdim=True, unbiased=False)
    return torch.where(std > 1e-6, std, torch.ones_like(std))


def feature_moments(x_BTF: torch.Tensor, missing_BTF: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 1, F) mean and spread of each feature over the training rows where it is not missing; a feature with
    fewer than two observed values, or no spread, gets mean 0 / spread 1 where it is degenerate."""
    observed_BTF = (~missing_BTF).to(x_BTF.dtype)
    count_B1F = observed_BTF.sum(1, keepdim=True)
    values_BTF = torch.where(missing_BTF, 0.0, x_BTF)
    mean_B1F = values_BTF.sum(1, keepdim=True) / count_B1F.clamp(min=1)
    variance_B1F = (observed_BTF * (values_BTF - mean_B1F) ** 2).sum(1, keepdim=True) / count_B1F.clamp(min=1)
    std_B1F = variance_B1F.sqrt()
    return mean_B1F, torch.where(std_B1F > 1e-6, std_B1F, torch.ones_like(std_B1F))


class Architecture(nn.Module):
    """Base of every PFN network: input checks, standardisation, heads, the log-likelihood, context caching."""

    name: ClassVar[str]
    """The entry-point name in the ``pfnforge.models`` group."""
    Config: ClassVar[type[ArchitectureConfig]]
    column_equivariant: ClassVar[bool] = False
    """Whether permuting the columns (and the feature embeddings with them) leaves predictions unchanged."""

    def __init__(self, config: ArchitectureConfig, borders: torch.Tensor | None, *, classification: bool) -> None:
        """``borders``: the regression head's bucket borders (``None``: no regression head);
        ``classification``: whether to have a classification head. Only heads a prior needs exist, so
        data-parallel training never holds parameters that get no gradient."""
        super().__init__()
        self.config = config
        self.classification_head: nn.Linear | None = None
        self.regression_head: nn.Linear | None = None
        self.bar: BarDistribution | None = None
        self._classification = classification
        self._borders = borders

    def build_heads(self, width: int) -> None:
        """The heads over the final embedding of width ``width``; call at the end of ``__init__``."""
        if self._classification:
            self.classification_head = nn.Linear(width, self.config.max_classes)
        if self._borders is not None:
            self.bar = BarDistribution(self._borders)
            self.regression_head = nn.Linear(width, self.bar.num_buckets)
        del self._borders

    # -- what an architecture implements --------------------------------------------------------------------
    def _embed(self, x_BRF: torch.Tensor, missing_BRF: torch.Tensor, y_BT: torch.Tensor,
               state: dict[str, Any] | None) -> tuple[torch.Tensor, dict[str, Any]]:
        """One pass. With ``state`` ``None``, rows ``:T`` (T = ``y_BT.shape[1]`` >= 1) are the context and
        the rest query rows; with a ``state``, ``y_BT`` is empty and every row is a query row reading it.
        ``x`` is standardised, 0 where missing; ``y`` standardised for regression, class indices for
        classification. Returns the (B, R - T, width) final, normalised embeddings of the query rows and the
        context's state (the given one, or the one computed)."""
        raise NotImplementedError

    def training_flops(self, num_datasets: int, num_rows: int, num_train_rows: int, num_features: int) -> float:
        """Floating-point operations of one training step (forward and backward, 3× the forward)."""
        raise NotImplementedError

    def tokens(self, num_datasets: int, num_rows: int, num_features: int) -> int:
        """Tokens one batch is, for throughput: one per row unless the architecture says otherwise."""
        return num_datasets * num_rows

    def shard_units(self) -> list[nn.Module]:
        """The modules FSDP shards one by one (its layers)."""
        return list(getattr(self, "layers", []))

    # -- shared ---------------------------------------------------------------------------------------------
    def run_layer(self, layer: nn.Module, *args: Any) -> Any:
        """``layer(*args)``, with activation checkpointing in training when the config asks for it."""
        if self.config.enable_activation_checkpointing and self.training and torch.is_grad_enabled():
            from torch.utils.checkpoint import checkpoint

            return checkpoint(layer, *args, use_reentrant=False)
        return layer(*args)

    def check_inputs(self, num_features: int) -> None:
        limit = self.config.max_features
        if limit is not None and num_features > limit:
            raise ConfigError(f"datasets have {num_features} features; this model takes at most {limit}: drop "
                              "features or train with a larger model.max_features")

    def _standardised(self, x_BRF: torch.Tensor, mean_B1F: torch.Tensor, std_B1F: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        missing_BRF = torch.isnan(x_BRF)
        if self.config.enable_standardization:
            x_BRF = ((x_BRF - mean_B1F) / std_B1F).clamp(-100, 100)
        return torch.where(missing_BRF, 0.0, x_BRF), missing_BRF

    def encode_context(self, x_BTF: torch.Tensor, y_BT: torch.Tensor, is_classification: bool) -> Context:
        """The ``Context`` of B datasets' training rows (raw features, NaN where missing; raw targets)."""
        self.check_inputs(x_BTF.shape[-1])
        if x_BTF.shape[1] < 1:
            raise ConfigError("a dataset needs at least one training row")
        mean_B1F, std_B1F = feature_moments(x_BTF, torch.isnan(x_BTF))
        x_BTF, missing_BTF = self._standardised(x_BTF, mean_B1F, std_B1F)
        y_mean_B1, y_std_B1 = target_scale(y_BT, self.config)
        y_in_BT = y_BT if is_classification else (y_BT - y_mean_B1) / y_std_B1
        _, state = self._embed(x_BTF, missing_BTF, y_in_BT, None)
        return Context(num_train_rows=x_BTF.shape[1], is_classification=is_classification, x_mean_B1F=mean_B1F,
                       x_std_B1F=std_B1F, y_mean_B1=y_mean_B1, y_std_B1=y_std_B1, state=state)

    def predict_from_context(self, context: Context, x_BQF: torch.Tensor) -> torch.Tensor:
        """(B, Q, C or N) logits of query rows given the training rows' ``Context``."""
        if x_BQF.shape[-1] != context.x_mean_B1F.shape[-1]:
            raise ConfigError(f"query rows have {x_BQF.shape[-1]} features; the context rows had "
                              f"{context.x_mean_B1F.shape[-1]}")
        head = self._head(context.is_classification)
        x_BQF, missing_BQF = self._standardised(x_BQF, context.x_mean_B1F, context.x_std_B1F)
        h_BQE, _ = self._embed(x_BQF, missing_BQF, x_BQF.new_zeros(x_BQF.shape[0], 0), context.state)
        return head(h_BQE)

    def _head(self, is_classification: bool) -> nn.Linear:
        head = self.classification_head if is_classification else self.regression_head
        if head is None:
            kind = "classification" if is_classification else "regression"
            raise ConfigError(f"this model has no {kind} head: train it on a prior with {kind} datasets")
        return head

    def forward(self, x_BRF: torch.Tensor, y_BR: torch.Tensor, num_train_rows: int,
                is_classification: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits of the test rows, (B, R - T, N or C), plus the target's per-dataset mean and std (B, 1)."""
        T, R = num_train_rows, x_BRF.shape[1]
        if not 1 <= T < R:
            raise ConfigError(f"the split point {T} must leave at least one training and one test row of {R}")
        self.check_inputs(x_BRF.shape[-1])
        head = self._head(is_classification)
        mean_B1F, std_B1F = feature_moments(x_BRF[:, :T], torch.isnan(x_BRF[:, :T]))
        x_BRF, missing_BRF = self._standardised(x_BRF, mean_B1F, std_B1F)
        y_mean_B1, y_std_B1 = target_scale(y_BR[:, :T], self.config)
        y_in_BT = y_BR[:, :T] if is_classification else (y_BR[:, :T] - y_mean_B1) / y_std_B1
        h_BQE, _ = self._embed(x_BRF, missing_BRF, y_in_BT, None)
        return head(h_BQE), y_mean_B1, y_std_B1

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
