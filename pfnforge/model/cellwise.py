"""``cellwise``: a cell-token PFN in the style of TabPFN v2 ("Accurate predictions on small data with a tabular
foundation model", Hollmann et al., Nature 2025) and nanoTabPFN.

Legend: B datasets, T training rows, Q query rows, F features, G = F + 1 columns (the features and the
target), E embedding width, H heads, D = E / H.

Every cell is a token: its standardised value and missing indicator, embedded, plus a fixed random embedding of
its column position (so the model can tell columns apart while treating them alike: permuting the columns,
with their embeddings, permutes nothing else). The target is one more column: its cell holds the embedded
target for training rows and a learned "to predict" vector for query rows. Each layer attends across the G
cells of a row, then across rows within each column (every row onto the training rows only), then applies
an MLP to every cell. The query rows' target cells are the output. No feature cap: memory is the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pfnforge.errors import ConfigError
from pfnforge.model.api import Architecture, ArchitectureConfig
from pfnforge.model.blocks import Block, feature_embeddings


@dataclass(kw_only=True)
class CellwiseConfig(ArchitectureConfig):
    """Size of a cell-token PFN; presets ``cellwise_tiny``, ``cellwise_small``, ``cellwise_base``."""

    embed_dim: int = 96
    """Cell token width E."""
    num_layers: int = 4
    """Layers, each: attention across a row's cells, attention across a column's rows, one MLP."""
    num_heads: int = 4
    """Attention heads H (must divide embed_dim)."""
    mlp_ratio: int = 2
    """Hidden width of each layer's MLP, in multiples of embed_dim."""
    feature_embedding_dim: int = 16
    """Width of the random per-column vectors (projected to E by a learned map); 0 turns them off."""
    feature_embedding_seed: int = 0
    """Seed of those random vectors: fixed, so column j gets the same vector in training and inference."""
    max_features: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_positive("embed_dim", "num_layers", "num_heads", "mlp_ratio")
        self.check_heads("embed_dim")
        if self.feature_embedding_dim < 0:
            raise ConfigError(f"model.feature_embedding_dim={self.feature_embedding_dim} must be >= 0")


class CellLayer(nn.Module):
    """Attention across the cells of a row, then across the rows of each column (onto context rows), then an
    MLP per cell."""

    def __init__(self, config: CellwiseConfig) -> None:
        super().__init__()
        self.across_features = Block(config.embed_dim, config.num_heads, 0, config.dropout)  # MLP comes after
        self.across_rows = Block(config.embed_dim, config.num_heads, config.mlp_ratio, config.dropout)

    def forward(self, h_BRGE: torch.Tensor, keys_values: tuple[torch.Tensor, torch.Tensor] | None,
                num_context: int) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``keys_values``: the context rows' (B·G, H, T, D) keys and values; ``None``: rows ``:num_context``
        are the context, and theirs are computed and returned."""
        B, R, G, E = h_BRGE.shape
        h_BRGE = self.across_features(h_BRGE.reshape(B * R, G, E))[0].view(B, R, G, E)
        h_BGRE = h_BRGE.transpose(1, 2).reshape(B * G, R, E)
        h_BGRE, keys_values = self.across_rows(h_BGRE, keys_values, num_context)
        return h_BGRE.view(B, G, R, E).transpose(1, 2), keys_values


class CellwisePFN(Architecture):
    """One token per cell; attention alternates between a row's cells and a column's rows."""

    name = "cellwise"
    Config = CellwiseConfig
    column_equivariant = True

    def __init__(self, config: CellwiseConfig, borders: torch.Tensor | None, *, classification: bool = False) -> None:
        super().__init__(config, borders, classification=classification)
        E = config.embed_dim
        self.encode_cell = nn.Linear(2, E)  # value and missing indicator
        self.encode_y = nn.Linear(1, E)
        self.target_to_predict = nn.Parameter(torch.zeros(E))
        self.encode_column = nn.Linear(config.feature_embedding_dim, E) if config.feature_embedding_dim else None
        self.layers = nn.ModuleList(CellLayer(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(E)
        self.build_heads(E)

    def feature_embeddings(self, num_features: int, device: torch.device | str) -> torch.Tensor:
        """(F, feature_embedding_dim) random vectors of the column positions (fixed by the config's seed)."""
        return feature_embeddings(num_features, self.config.feature_embedding_dim,
                                  self.config.feature_embedding_seed, device)

    def _cells(self, x_BRF: torch.Tensor, missing_BRF: torch.Tensor, target_BRE: torch.Tensor) -> torch.Tensor:
        """(B, R, G, E): feature cells with their column embeddings, then the target cell."""
        cells_BRFE = self.encode_cell(torch.stack([x_BRF, missing_BRF.to(x_BRF.dtype)], -1))
        if self.encode_column is not None:
            columns_FE = self.encode_column(self.feature_embeddings(x_BRF.shape[-1], x_BRF.device).to(x_BRF.dtype))
            cells_BRFE = cells_BRFE + columns_FE
        return torch.cat([cells_BRFE, target_BRE.unsqueeze(2)], 2)

    def _embed(self, x_BRF: torch.Tensor, missing_BRF: torch.Tensor, y_BT: torch.Tensor,
               state: dict[str, Any] | None) -> tuple[torch.Tensor, dict[str, Any]]:
        B, R, _ = x_BRF.shape
        T = y_BT.shape[1]
        target_BRE = torch.cat([self.encode_y(y_BT.unsqueeze(-1)), self.target_to_predict.expand(B, R - T, -1)], 1)
        h_BRGE = self._cells(x_BRF, missing_BRF, target_BRE)
        given = state["keys_values"] if state is not None else [None] * len(self.layers)
        keys_values = []
        for layer, kv in zip(self.layers, given, strict=True):
            h_BRGE, kv = self.run_layer(layer, h_BRGE, kv, T)
            keys_values.append(kv)
        return self.norm(h_BRGE[:, T:, -1]), {"keys_values": keys_values}

    def tokens(self, num_datasets: int, num_rows: int, num_features: int) -> int:
        return num_datasets * num_rows * (num_features + 1)

    def training_flops(self, num_datasets: int, num_rows: int, num_train_rows: int, num_features: int) -> float:
        """Per layer and cell: two attentions' projections and one MLP; scores of a row's G cells and of each
        cell onto the T context cells of its column; 3× the forward."""
        c = self.config
        E, G, T = c.embed_dim, num_features + 1, num_train_rows
        per_cell = 2 * (8 * E * E + 2 * c.mlp_ratio * E * E) + 4 * G * E + 4 * T * E
        return 3.0 * num_datasets * c.num_layers * num_rows * G * per_cell
