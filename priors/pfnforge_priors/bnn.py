"""``bnn``: datasets drawn from Bayesian neural networks, random MLPs with Gaussian weights.

Per dataset a weight scale, bias scale and noise level are drawn from their hyperpriors; the network's
depth, width and activation are fixed by the config. Each weight is N(0, weight_scale² / fan_in), so the
pre-activation variance does not grow with width. Regression targets are the network's output plus
Gaussian noise; classification targets come from thresholding that output at random quantiles (classes
of random balance) or from sampling a softmax over per-class outputs.

Speed: everything runs in float32 (the batch stores float32 anyway). Inputs, weights and noise come from
``pfnforge.blocks.dense.standard_normal_f32`` (~20x NumPy's ziggurat, which dominated the sampling time;
``benchmarks/mlp_priors_profile.py``), the layers are batched float32 matrix products (one BLAS call per
dataset, no Python loop) and the activations are NumPy's SIMD float32 functions applied in place.

Shapes: B datasets, R rows, F features, W units of a layer, P weights and biases of one network.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from pfnforge.batch import PriorBatch
from pfnforge.blocks.dense import standard_normal_f32
from pfnforge.errors import ConfigError
from pfnforge.hyperpriors import IntRange, Range, Scale
from pfnforge.prior import BatchShape, Prior, PriorConfig, Task

MAX_CLASSES = 10


class Activation(enum.Enum):
    tanh = "tanh"
    relu = "relu"
    sigmoid = "sigmoid"
    sin = "sin"
    identity = "identity"


class Labelling(enum.Enum):
    """How a classification dataset's classes come from the network."""

    threshold = "threshold"
    """Cut the scalar output at random quantiles: class balance varies per dataset."""
    softmax = "softmax"
    """Sample each row's class from a softmax over per-class outputs."""


def _sigmoid_inplace(h: np.ndarray) -> None:
    h *= np.float32(0.5)  # sigmoid(h) = (1 + tanh(h / 2)) / 2: NumPy's float32 tanh is SIMD, exp is slower
    np.tanh(h, out=h)
    h *= np.float32(0.5)
    h += np.float32(0.5)


_ACTIVATIONS_INPLACE = {
    Activation.tanh: lambda h: np.tanh(h, out=h),
    Activation.relu: lambda h: np.maximum(h, np.float32(0.0), out=h),
    Activation.sigmoid: _sigmoid_inplace,
    Activation.sin: lambda h: np.sin(h, out=h),
    Activation.identity: lambda h: None,
}


@dataclass(kw_only=True)
class BNNConfig(PriorConfig):
    """Architecture (fixed) and hyperpriors (drawn per dataset) of the BNN prior."""

    classification: bool = False
    """Classification datasets instead of regression ones."""
    num_layers: int = 2
    """Hidden layers (0: a linear model)."""
    hidden_width: int = 32
    """Units per hidden layer."""
    activation: Activation = Activation.tanh
    """Hidden-layer nonlinearity: tanh, relu, sigmoid, sin or identity."""
    weight_scale: Range = field(default_factory=lambda: Range(low=0.5, high=2.0, scale=Scale.log))
    """Weight std times sqrt(fan_in), per dataset (> 0)."""
    bias_scale: Range = field(default_factory=lambda: Range(low=0.01, high=1.0, scale=Scale.log))
    """Bias std, per dataset (> 0)."""
    noise_std: Range = field(default_factory=lambda: Range(low=0.01, high=0.3, scale=Scale.log))
    """Std of the Gaussian noise on the output, per dataset (> 0)."""
    normal_inputs: bool = True
    """Standard-normal features; false: uniform on [0, 1]."""
    num_classes: IntRange = field(default_factory=lambda: IntRange(low=2, high=MAX_CLASSES))
    """Classes per classification dataset, drawn per dataset (2..10)."""
    labelling: Labelling = Labelling.threshold
    """threshold (random quantile cuts of one output) or softmax (sampled from per-class outputs)."""
    permute_classes: bool = True
    """Threshold labelling: the classes of the cuts in a random order per dataset, so a label says nothing about
    where its rows lie on the output (TabPFN v1 permutes them too); false: class k holds the k-th lowest."""

    def __post_init__(self) -> None:
        if self.num_layers < 0:
            raise ConfigError(f"num_layers={self.num_layers} is out of range: it must be >= 0")
        if self.hidden_width < 1:
            raise ConfigError(f"hidden_width={self.hidden_width} is out of range: it must be >= 1")
        for name in ("weight_scale", "bias_scale", "noise_std"):
            getattr(self, name).check(name, above=0.0)
        if not 2 <= self.num_classes.low <= self.num_classes.high <= MAX_CLASSES:
            raise ConfigError(f"num_classes=[{self.num_classes.low}, {self.num_classes.high}] is out of range: "
                              f"classes must lie in [2, {MAX_CLASSES}]")


class BNNPrior(Prior):
    """Random MLPs with Gaussian weights; regression or classification."""

    name: ClassVar[str] = "bnn"
    task: ClassVar[Task] = Task.mixed  # per instance: what the config asks for
    Config: ClassVar[type[PriorConfig]] = BNNConfig

    def __init__(self, config: BNNConfig | None = None) -> None:
        super().__init__(config)
        self.task = Task.classification if self.config.classification else Task.regression

    def sample(self, rng: np.random.Generator, shape: BatchShape) -> PriorBatch:
        cfg: BNNConfig = self.config
        B, R, F = shape.num_datasets, shape.num_rows, shape.num_features
        if cfg.classification and cfg.num_classes.low > R:
            raise ConfigError(f"{R} rows cannot hold num_classes.low={cfg.num_classes.low} classes: use more rows")
        weight_scale, bias_scale, noise_std = (getattr(cfg, n).sample(rng, B)
                                               for n in ("weight_scale", "bias_scale", "noise_std"))
        x_BRF = standard_normal_f32(rng, (B, R, F)) if cfg.normal_inputs else rng.random((B, R, F), np.float32)
        softmax = cfg.classification and cfg.labelling is Labelling.softmax
        widths = [cfg.hidden_width] * cfg.num_layers + [MAX_CLASSES if softmax else 1]
        out_BRW = random_mlp(rng, x_BRF, widths, cfg.activation, weight_scale, bias_scale)
        out_BRW += noise_std[:, None, None].astype(np.float32) * standard_normal_f32(rng, out_BRW.shape)
        num_classes = cfg.num_classes.sample(rng, B).astype(np.int32) if cfg.classification else 0
        y_BR = outputs_to_targets(rng, out_BRW, num_classes, softmax, cfg.permute_classes) if cfg.classification \
            else out_BRW[..., 0]
        return PriorBatch(x=x_BRF, y=np.ascontiguousarray(y_BR, np.float32), num_rows=R, num_features=F,
                          num_train_rows=shape.num_train_rows, num_classes=num_classes, prior=self.name,
                          hyperparameters={"weight_scale": weight_scale, "bias_scale": bias_scale,
                                           "noise_std": noise_std})


def random_mlp(rng: np.random.Generator, x_BRF: np.ndarray, widths: list[int], activation: Activation,
               weight_scale_B: np.ndarray, bias_scale_B: np.ndarray) -> np.ndarray:
    """(B, R, widths[-1]) float32 outputs of one random MLP per dataset: weights N(0, scale² / fan_in),
    biases N(0, bias_scale²), ``activation`` between layers, none after the last. ``x_BRF`` is float32."""
    B, _, fan_in = x_BRF.shape
    fan_ins = [fan_in, *widths[:-1]]
    # every weight and bias of the B networks in one draw: (B, P), layer by layer weights then biases
    params_BP = standard_normal_f32(rng, (B, sum((f + 1) * w for f, w in zip(fan_ins, widths, strict=True))))
    bias_scale_B11 = bias_scale_B.astype(np.float32)[:, None, None]
    h_BRW, offset = x_BRF, 0
    for depth, (fan_in, width) in enumerate(zip(fan_ins, widths, strict=True)):
        weights_BFW = params_BP[:, offset:offset + fan_in * width].reshape(B, fan_in, width)
        weights_BFW = weights_BFW * (weight_scale_B / math.sqrt(fan_in)).astype(np.float32)[:, None, None]
        offset += fan_in * width
        h_BRW = np.matmul(h_BRW, weights_BFW)  # (B, R, fan_in) @ (B, fan_in, W) -> (B, R, W)
        h_BRW += params_BP[:, offset:offset + width].reshape(B, 1, width) * bias_scale_B11
        offset += width
        if depth < len(widths) - 1:
            _ACTIVATIONS_INPLACE[activation](h_BRW)
    return h_BRW


def outputs_to_targets(rng: np.random.Generator, out_BRW: np.ndarray, num_classes_B: np.ndarray,
                       softmax: bool, permute: bool = True) -> np.ndarray:
    """(B, R) class labels: Gumbel-max over the first C outputs, or cuts of output 0 at random quantiles, the
    classes of the cuts in a random order per dataset (``permute``; else class k holds the k-th lowest
    outputs). Gumbel-max labels need no permutation: each class has its own random output."""
    B, R, _ = out_BRW.shape
    if softmax:  # Gumbel-max sampling over each dataset's first C outputs
        gumbel = -np.log(-np.log(rng.uniform(1e-12, 1.0, out_BRW.shape)))
        masked = np.where(np.arange(MAX_CLASSES)[None, None, :] < num_classes_B[:, None, None],
                          out_BRW + gumbel, -np.inf)
        return masked.argmax(axis=-1).astype(np.float64)
    y_BR = np.empty((B, R))
    for b in range(B):  # C - 1 cuts at random quantiles of this dataset's outputs
        quantiles = np.sort(rng.uniform(0, 1, num_classes_B[b] - 1))
        cuts = np.quantile(out_BRW[b, :, 0], quantiles)
        labels_R = np.searchsorted(cuts, out_BRW[b, :, 0])
        y_BR[b] = rng.permutation(num_classes_B[b])[labels_R] if permute else labels_R
    return y_BR
