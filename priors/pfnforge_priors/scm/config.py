"""The SCM prior's typed config: every knob of the graph, its mechanisms and the tabular post-processing,
each a hyperprior drawn per dataset (or per node / per feature where the docstring says so)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from pfnforge.blocks.mlp import ACTIVATION_CODES
from pfnforge.errors import ConfigError
from pfnforge.hyperpriors import Choice, IntRange, Range, Scale
from pfnforge.prior import PriorConfig

MAX_CLASSES = 10
MAX_FEATURES = 100


class RootDistribution(enum.Enum):
    """How a root node (a cause with no parents) is drawn, row by row."""

    normal = "normal"
    uniform = "uniform"
    lognormal = "lognormal"
    """Skewed: exp of a standard normal, then standardised."""


def _fraction(default_high: float) -> Range:
    return Range(low=0.0, high=default_high)


@dataclass(kw_only=True)
class SCMConfig(PriorConfig):
    """Hyperpriors of the SCM prior (random DAG of nonlinear mechanisms, then TabPFN-style post-processing)."""

    classification: bool = True
    """Classification datasets (the target node discretised into classes); false: regression targets."""
    num_features: IntRange = field(default_factory=lambda: IntRange(low=1, high=MAX_FEATURES))
    """Features a dataset uses (>= 1; TabPFN: 1..100), capped at the batch's num_features; the other columns
    stay zero."""
    num_latent_nodes: IntRange = field(default_factory=lambda: IntRange(low=2, high=30))
    """Unobserved nodes of the graph besides the features and the target (>= 0)."""
    num_root_nodes: IntRange = field(default_factory=lambda: IntRange(low=1, high=10))
    """Root causes (nodes without parents) in each of the graph's components (>= 1)."""
    num_parents: IntRange = field(default_factory=lambda: IntRange(low=1, high=4))
    """Most parents of a non-root node; each node draws 1..this many from earlier nodes of its component."""
    irrelevant_fraction: Range = field(default_factory=lambda: _fraction(0.3))
    """Share of nodes placed in a component that is disconnected from the target (features independent of it)."""
    target_position: Range = field(default_factory=lambda: Range(low=0.3, high=1.0))
    """Where the target sits in its component's causal order (0: first non-root, 1: last): later targets have
    more causes among the features, earlier ones more effects. In [0, 1]."""
    tree_fraction: Range = field(default_factory=lambda: _fraction(0.5))
    """Probability that a node's mechanism is a random decision tree over its parents instead of a random
    MLP unit (weighted sum, gain, shift, activation). In [0, 1]."""
    tree_depth: IntRange = field(default_factory=lambda: IntRange(low=1, high=4))
    """Depth of each tree mechanism, drawn per node (1..8): axis-aligned splits at values of random rows."""
    activations: Choice = field(default_factory=lambda: Choice(options=[
        "tanh", "relu", "sigmoid", "sin", "abs", "square", "step", "gaussian", "softplus", "leaky_relu",
        "identity"]))
    """Activations of MLP mechanisms, drawn per node: identity, tanh, relu, sigmoid, sin, abs, square, step,
    gaussian (exp(-h²)), softplus, leaky_relu."""
    root_distribution: Choice = field(default_factory=lambda: Choice(options=["normal", "uniform", "lognormal"]))
    """Distribution of each root node, drawn per node: normal, uniform, lognormal."""
    weight_scale: Range = field(default_factory=lambda: Range(low=0.5, high=3.0, scale=Scale.log))
    """Gain on a node's standardised weighted sum before its activation, per dataset (> 0): larger is more
    nonlinear (saturating tanh, sharper steps)."""
    noise_std: Range = field(default_factory=lambda: Range(low=0.01, high=0.5, scale=Scale.log))
    """Noise std of the nodes (each of unit variance before noise), per dataset (>= 0); every node scales it
    by its own factor, log-uniform in [1/2, 2]."""
    num_classes: IntRange = field(default_factory=lambda: IntRange(low=2, high=MAX_CLASSES))
    """Classes per classification dataset (2..10), capped at the dataset's rows."""
    class_imbalance: Range = field(default_factory=lambda: Range(low=1.0, high=10.0, scale=Scale.log))
    """Rows of the largest class over rows of the smallest (>= 1; 1 is balanced), per dataset; the other
    classes fall in between, log-uniformly. Up to 1:1000 and beyond where the rows allow (every class keeps at
    least one row)."""
    categorical_fraction: Range = field(default_factory=lambda: _fraction(0.3))
    """Probability that a feature becomes ordinal categorical (codes 0..K-1), per dataset. In [0, 1]."""
    num_categories: IntRange = field(default_factory=lambda: IntRange(low=2, high=30, scale=Scale.log))
    """Categories K of a categorical feature, per feature (>= 2): cuts at the values of K - 1 random rows.
    Heavy-tailed by default (log scale: 2 in 15 % of features, more than 10 in 38 %, up to 30)."""
    category_permutation: float = 0.7
    """Probability that a categorical feature's codes are permuted, per feature, so that code order says
    nothing about the value's order (TabPFN v1 keeps the order in ~30 % of columns). In [0, 1]."""
    missing_dataset_probability: float = 0.5
    """Probability that a dataset has missing values at all (in [0, 1]; 0 disables missing values)."""
    missing_rate: Range = field(default_factory=lambda: Range(low=0.01, high=0.2))
    """Fraction of a feature's values that go missing (NaN) in a dataset with missing values. In [0, 1]."""
    value_dependent_probability: float = 0.5
    """Probability that a dataset's missingness depends on the values (else MCAR). In [0, 1]."""
    missing_strength: Range = field(default_factory=lambda: Range(low=0.5, high=2.0))
    """How strongly value-dependent missingness follows the value (|s| in P ∝ e^{s z}; sign per feature), >= 0."""
    warp_fraction: Range = field(default_factory=lambda: _fraction(0.3))
    """Probability that a non-categorical feature is warped (Kumaraswamy or power, half each). In [0, 1]."""
    warp_exponent: Range = field(default_factory=lambda: Range(low=0.3, high=3.0, scale=Scale.log))
    """Exponents of the warps (Kumaraswamy a and b, power p), per feature (> 0)."""
    quantize_fraction: Range = field(default_factory=lambda: _fraction(0.2))
    """Probability that a non-categorical feature is rounded onto a grid, per dataset. In [0, 1]."""
    quantize_levels: IntRange = field(default_factory=lambda: IntRange(low=3, high=30))
    """Grid points of a quantised feature, per feature (>= 2)."""
    meta_hyperpriors: bool = False
    """A level of hyperpriors above these (TabPFN v1's ``meta_*``): per batch, the ranges of
    ``num_latent_nodes`` (width), ``num_parents`` (depth of the mechanisms' fan-in), ``weight_scale`` (init
    scale) and ``noise_std`` are each narrowed to a random sub-range (two draws, sorted), from which every
    dataset of the batch then draws. Batches then differ from each other more than datasets within a batch."""
    node_width: IntRange = field(default_factory=lambda: IntRange(low=1, high=1))
    """Units per non-root node, drawn per node (>= 1; 1: scalar nodes). A node of width w is w MLP or tree
    units over the same parents (a layer, as in TabPFN v1's MLP prior): read as features, its units are a
    block of correlated columns."""
    heteroscedastic_fraction: Range = field(default_factory=lambda: _fraction(0.0))
    """Probability that a non-root node's noise std varies with its first parent (∝ e^{z}, z the parent's
    standardised value, rescaled to the node's noise variance), per dataset. In [0, 1]."""
    heavy_tailed_noise_fraction: Range = field(default_factory=lambda: _fraction(0.0))
    """Probability that a node's noise is Student-t (unit variance, ``noise_df`` degrees of freedom) instead
    of normal, per dataset. In [0, 1]."""
    noise_df: Range = field(default_factory=lambda: Range(low=2.5, high=10.0, scale=Scale.log))
    """Degrees of freedom of Student-t noise, per node (> 2, so the variance is finite)."""
    label_noise: Range = field(default_factory=lambda: _fraction(0.0))
    """Classification: fraction of rows whose class is replaced by another class drawn uniformly, per dataset
    (a class of very few rows can lose all of them). In [0, 1]."""
    redundant_fraction: Range = field(default_factory=lambda: _fraction(0.0))
    """Probability that a feature column (after the first) is redundant, per dataset: an exact copy of an
    earlier column or (half of them) a random linear combination of two earlier ones. In [0, 1]."""
    outlier_rate: Range = field(default_factory=lambda: _fraction(0.0))
    """Fraction of the cells of each non-categorical feature replaced by an outlier (the column's mean ± 5 to 20
    of its standard deviations), per dataset. In [0, 1]."""

    def __post_init__(self) -> None:
        self._check_ints()
        for name in ("irrelevant_fraction", "target_position", "tree_fraction", "categorical_fraction",
                     "missing_rate", "warp_fraction", "quantize_fraction", "heteroscedastic_fraction",
                     "heavy_tailed_noise_fraction", "label_noise", "redundant_fraction", "outlier_rate"):
            getattr(self, name).check(name, at_least=0.0, at_most=1.0)
        for name in ("missing_dataset_probability", "value_dependent_probability", "category_permutation"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name}={value} is out of range: it is a probability in [0, 1]")
        self.weight_scale.check("weight_scale", above=0.0)
        self.warp_exponent.check("warp_exponent", above=0.0)
        self.noise_std.check("noise_std", at_least=0.0)
        self.missing_strength.check("missing_strength", at_least=0.0)
        self.class_imbalance.check("class_imbalance", at_least=1.0)
        self.noise_df.check("noise_df", above=2.0)
        unknown = set(self.activations.options) - set(ACTIVATION_CODES)
        if unknown:
            raise ConfigError(f"activations: unknown {sorted(unknown)}; choose from {list(ACTIVATION_CODES)}")
        roots = {d.value for d in RootDistribution}
        if set(self.root_distribution.options) - roots:
            raise ConfigError(f"root_distribution: unknown {sorted(set(self.root_distribution.options) - roots)};"
                              f" choose from {sorted(roots)}")

    def _check_ints(self) -> None:
        bounds = {"num_features": (1, None), "num_latent_nodes": (0, None), "num_root_nodes": (1, None),
                  "num_parents": (1, None), "tree_depth": (1, 8), "num_classes": (2, MAX_CLASSES),
                  "num_categories": (2, None), "quantize_levels": (2, None), "node_width": (1, None)}
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if value.low < low or (high is not None and value.high > high):
                allowed = f"[{low}, {high}]" if high is not None else f">= {low}"
                raise ConfigError(f"{name}=[{value.low}, {value.high}] is out of range: it must lie in {allowed}"
                                  f" (set {name}.low=... {name}.high=...)")

    def emits_missing_values(self) -> bool:
        """Whether any dataset may get missing values under these settings."""
        return self.missing_dataset_probability > 0 and self.missing_rate.high > 0
