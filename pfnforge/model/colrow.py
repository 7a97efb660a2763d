"""``colrow``: a column-then-row in-context model in the style of TabICL ("TabICL: A Tabular Foundation Model for
In-Context Learning on Large Data", Qu et al., ICML 2025).

Legend: B datasets, T training rows, Q query rows, R rows of either kind, F features, I inducing points,
K CLS tokens, E cell width, W = K·E row width, H heads.

Three stages:
1. **Columns**: each cell's value (and missing indicator) is embedded, and a set transformer with I induced
   points reads each column's distribution: the inducing points attend to the column's training cells, then
   every cell attends to the inducing points. A cell's embedding thus depends on its value and on its column's
   training values, never on other query rows.
2. **Rows**: within each row, its F cell embeddings (plus fixed random column-position embeddings, so permuting
   columns permutes nothing else) and K learned CLS tokens attend to each other; the CLS outputs, concatenated,
   are the row's vector of width W.
3. **In context**: row vectors, with the embedded target added to training rows, go through transformer layers
   where training rows attend to each other and query rows to training rows only.
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
class ColrowConfig(ArchitectureConfig):
    """Size of a column-then-row model; presets ``colrow_tiny``, ``colrow_small``, ``colrow_base``."""

    cell_dim: int = 32
    """Cell embedding width E of the column and row stages."""
    num_inducing: int = 16
    """Inducing points I of each column's set transformer."""
    num_column_layers: int = 1
    """Set-transformer layers of the column stage."""
    num_row_layers: int = 2
    """Layers of the row stage (attention within a row)."""
    num_cls: int = 4
    """CLS tokens K per row; the row vector is their outputs concatenated (width K·E)."""
    num_layers: int = 4
    """In-context transformer layers over rows."""
    num_heads: int = 4
    """Attention heads of every stage (must divide cell_dim and num_cls·cell_dim)."""
    mlp_ratio: int = 2
    """Hidden width of each MLP, in multiples of its stage's width."""
    feature_embedding_dim: int = 16
    """Width of the random per-column vectors (projected to E by a learned map); 0 turns them off."""
    feature_embedding_seed: int = 0
    """Seed of those random vectors: fixed, so column j gets the same vector in training and inference."""
    max_features: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_positive("cell_dim", "num_inducing", "num_column_layers", "num_row_layers", "num_cls",
                            "num_layers", "num_heads", "mlp_ratio")
        self.check_heads("cell_dim")
        if self.feature_embedding_dim < 0:
            raise ConfigError(f"model.feature_embedding_dim={self.feature_embedding_dim} must be >= 0")

    @property
    def row_dim(self) -> int:
        return self.num_cls * self.cell_dim


class InducedColumn(nn.Module):
    """One set-transformer layer over a column: inducing points read the context cells, all cells read them."""

    def __init__(self, config: ColrowConfig) -> None:
        super().__init__()
        E = config.cell_dim
        self.inducing = nn.Parameter(torch.randn(config.num_inducing, E) * 0.02)
        self.read_column = Block(E, config.num_heads, config.mlp_ratio, config.dropout)
        self.read_summary = Block(E, config.num_heads, config.mlp_ratio, config.dropout)

    def forward(self, h_NRE: torch.Tensor, summary: tuple[torch.Tensor, torch.Tensor] | None,
                num_context: int) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Every cell reads the column summary: the keys and values of the inducing points after they read the
        column's context cells (rows ``:num_context``; N = B·F columns), computed and returned when
        ``summary`` is ``None``."""
        if summary is None:
            points_NIE, _ = self.read_column(self.inducing.expand(h_NRE.shape[0], -1, -1),
                                             self.read_column.keys_values(h_NRE[:, :num_context]))
            summary = self.read_summary.keys_values(points_NIE)
        return self.read_summary(h_NRE, summary)


class ColrowPFN(Architecture):
    """Columns embedded by a set transformer, rows compressed by CLS tokens, then in-context learning over rows."""

    name = "colrow"
    Config = ColrowConfig
    column_equivariant = True

    def __init__(self, config: ColrowConfig, borders: torch.Tensor | None, *, classification: bool = False) -> None:
        super().__init__(config, borders, classification=classification)
        E, W = config.cell_dim, config.row_dim
        self.encode_cell = nn.Linear(2, E)  # value and missing indicator
        self.columns = nn.ModuleList(InducedColumn(config) for _ in range(config.num_column_layers))
        self.encode_column = nn.Linear(config.feature_embedding_dim, E) if config.feature_embedding_dim else None
        self.cls = nn.Parameter(torch.randn(config.num_cls, E) * 0.02)
        self.rows = nn.ModuleList(Block(E, config.num_heads, config.mlp_ratio, config.dropout)
                                  for _ in range(config.num_row_layers))
        self.norm_row = nn.LayerNorm(W)
        self.encode_y = nn.Linear(1, W)
        self.layers = nn.ModuleList(Block(W, config.num_heads, config.mlp_ratio, config.dropout)
                                    for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(W)
        self.build_heads(W)

    def feature_embeddings(self, num_features: int, device: torch.device | str) -> torch.Tensor:
        """(F, feature_embedding_dim) random vectors of the column positions (fixed by the config's seed)."""
        return feature_embeddings(num_features, self.config.feature_embedding_dim,
                                  self.config.feature_embedding_seed, device)

    def _row_vectors(self, x_BRF: torch.Tensor, missing_BRF: torch.Tensor,
                     summaries: list[tuple[torch.Tensor, torch.Tensor]] | None, num_context: int
                     ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """(B, R, W) row vectors, and the column summaries they read: ``summaries`` if given, else those of
        rows ``:num_context``."""
        B, R, F = x_BRF.shape
        E, K = self.config.cell_dim, self.config.num_cls
        cells_BRFE = self.encode_cell(torch.stack([x_BRF, missing_BRF.to(x_BRF.dtype)], -1))
        h_NRE = cells_BRFE.permute(0, 2, 1, 3).reshape(B * F, R, E)  # one set per column
        given = summaries if summaries is not None else [None] * len(self.columns)
        computed = []
        for column, summary in zip(self.columns, given, strict=True):
            h_NRE, summary = self.run_layer(column, h_NRE, summary, num_context)
            computed.append(summary)
        h_BRFE = h_NRE.view(B, F, R, E).transpose(1, 2)
        if self.encode_column is not None:
            h_BRFE = h_BRFE + self.encode_column(self.feature_embeddings(F, x_BRF.device).to(x_BRF.dtype))
        h_SGE = torch.cat([self.cls.expand(B, R, K, E), h_BRFE], 2).reshape(B * R, K + F, E)
        for row in self.rows:
            h_SGE, _ = self.run_layer(row, h_SGE)
        return self.norm_row(h_SGE[:, :K].reshape(B, R, K * E)), computed

    def _embed(self, x_BRF: torch.Tensor, missing_BRF: torch.Tensor, y_BT: torch.Tensor,
               state: dict[str, Any] | None) -> tuple[torch.Tensor, dict[str, Any]]:
        T = y_BT.shape[1]
        rows_BRW, summaries = self._row_vectors(x_BRF, missing_BRF,
                                                state["column_summaries"] if state is not None else None, T)
        h_BRW = torch.cat([rows_BRW[:, :T] + self.encode_y(y_BT.unsqueeze(-1)), rows_BRW[:, T:]], 1)
        given = state["keys_values"] if state is not None else [None] * len(self.layers)
        keys_values = []
        for layer, kv in zip(self.layers, given, strict=True):
            h_BRW, kv = self.run_layer(layer, h_BRW, kv, T)
            keys_values.append(kv)
        return self.norm(h_BRW[:, T:]), {"column_summaries": summaries, "keys_values": keys_values}

    def shard_units(self) -> list[nn.Module]:
        return [*self.columns, *self.rows, *self.layers]

    def training_flops(self, num_datasets: int, num_rows: int, num_train_rows: int, num_features: int) -> float:
        """Column stage (cells onto I points), row stage (K + F tokens per row), in-context stage (rows onto
        the T context rows); projections and MLPs 2·params per token; 3× the forward."""
        c = self.config
        E, W, F, T, P, K = c.cell_dim, c.row_dim, num_features, num_train_rows, c.num_inducing, c.num_cls
        block = lambda width: 2 * (4 * width * width + 2 * c.mlp_ratio * width * width)  # noqa: E731
        column = num_rows * F * (block(E) + 4 * P * E) + F * P * (block(E) + 4 * T * E)  # P inducing points
        row = num_rows * (K + F) * (block(E) + 4 * (K + F) * E)
        in_context = num_rows * (block(W) + 4 * T * W)
        return 3.0 * num_datasets * (c.num_column_layers * column + c.num_row_layers * row + c.num_layers * in_context)
