"""``rowwise``: the row-token PFN of "Transformers Can Do Bayesian Inference" (Müller et al., ICLR 2022) and
TabPFN v1 (Hollmann et al., ICLR 2023), read top to bottom.

Legend: B datasets, T training rows, Q query rows, F features (zero-padded to max_features), E embedding width,
H heads, D = E / H.

Each row of a dataset is one token: an encoding of its features (values and missing-value indicators), plus,
for training rows, an encoding of its target. In every layer training rows attend to each other and query rows
to the training rows only, so a query row never sees another query row and no positional encoding is needed:
the prediction for a row does not depend on the order of the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pfnforge.model.api import Architecture, ArchitectureConfig
from pfnforge.model.blocks import Block


@dataclass(kw_only=True)
class ModelConfig(ArchitectureConfig):
    """Size of a row-token PFN; presets in ``configs/model/`` (``rowwise_tiny``, ``tiny``, ``small``, ...)."""

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

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_positive("embed_dim", "num_layers", "num_heads", "mlp_ratio")
        self.check_heads("embed_dim")


class PFN(Architecture):
    """Maps (x, y of the training rows) to a predictive distribution for every query row, one token per row."""

    name = "rowwise"
    Config = ModelConfig

    def __init__(self, config: ModelConfig, borders: torch.Tensor | None, *, classification: bool = False) -> None:
        super().__init__(config, borders, classification=classification)
        E = config.embed_dim
        self.encode_x = nn.Linear(2 * config.max_features, E)  # values and missing-value indicators
        self.encode_y = nn.Linear(1, E)
        self.layers = nn.ModuleList(Block(E, config.num_heads, config.mlp_ratio, config.dropout)
                                    for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(E)
        self.build_heads(E)

    def _row_tokens(self, x_BRF: torch.Tensor, missing_BRF: torch.Tensor) -> torch.Tensor:
        """(B, R, E): each row's features and missing indicators, zero-padded to max_features, embedded."""
        pad = self.config.max_features - x_BRF.shape[-1]
        tokens_BR2F = torch.cat([F.pad(x_BRF, (0, pad)), F.pad(missing_BRF.to(x_BRF.dtype), (0, pad))], -1)
        return self.encode_x(tokens_BR2F)

    def _embed(self, x_BRF: torch.Tensor, missing_BRF: torch.Tensor, y_BT: torch.Tensor,
               state: dict[str, Any] | None) -> tuple[torch.Tensor, dict[str, Any]]:
        T = y_BT.shape[1]
        h_BRE = self._row_tokens(x_BRF, missing_BRF)
        h_BRE = torch.cat([h_BRE[:, :T] + self.encode_y(y_BT.unsqueeze(-1)), h_BRE[:, T:]], 1)
        given = state["keys_values"] if state is not None else [None] * len(self.layers)
        keys_values = []  # per layer, (B, H, T, D) each: what query rows read
        for layer, kv in zip(self.layers, given, strict=True):
            h_BRE, kv = self.run_layer(layer, h_BRE, kv, T)
            keys_values.append(kv)
        return self.norm(h_BRE[:, T:]), {"keys_values": keys_values}

    def training_flops(self, num_datasets: int, num_rows: int, num_train_rows: int, num_features: int) -> float:
        """Matrix products: query, output and MLP projections of every row, key/value projections of the
        training rows, attention of every row onto the training rows; 3× the forward."""
        c = self.config
        E, T = c.embed_dim, num_train_rows
        every_row = 2 * (2 * E * E + 2 * c.mlp_ratio * E * E) + 4 * T * E  # projections; scores and values
        train_rows = 2 * (2 * E * E)  # keys and values
        return 3.0 * num_datasets * c.num_layers * (num_rows * every_row + T * train_rows)
