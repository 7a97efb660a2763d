"""A worked example of a pfnforge architecture plugin: one attention layer of query rows onto context rows,
i.e. a learned kernel smoother. Registered in ``pyproject.toml`` under ``pfnforge.models`` as ``example_kernel``.

Legend: B datasets, T context rows, Q query rows, F features (zero-padded to max_features), E width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pfnforge.model.api import Architecture, ArchitectureConfig
from pfnforge.model.blocks import Block


@dataclass(kw_only=True)
class KernelConfig(ArchitectureConfig):
    """Size of the kernel smoother."""

    embed_dim: int = 32
    """Row embedding width E."""
    num_heads: int = 2
    """Attention heads (must divide embed_dim)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_positive("embed_dim", "num_heads")
        self.check_heads("embed_dim")


class KernelPFN(Architecture):
    """Rows embedded by an MLP; query rows attend once to the context rows, whose values carry the target."""

    name = "example_kernel"
    Config = KernelConfig

    def __init__(self, config: KernelConfig, borders: torch.Tensor | None, *, classification: bool = False) -> None:
        super().__init__(config, borders, classification=classification)
        E = config.embed_dim
        self.encode_x = nn.Sequential(nn.Linear(2 * config.max_features, E), nn.GELU(), nn.Linear(E, E))
        self.encode_y = nn.Linear(1, E)
        self.layers = nn.ModuleList([Block(E, config.num_heads, 2, config.dropout)])
        self.norm = nn.LayerNorm(E)
        self.build_heads(E)

    def _rows(self, x_BRF: torch.Tensor, missing_BRF: torch.Tensor) -> torch.Tensor:
        pad = self.config.max_features - x_BRF.shape[-1]
        both_BR2F = torch.cat([nn.functional.pad(x_BRF, (0, pad)),
                               nn.functional.pad(missing_BRF.to(x_BRF.dtype), (0, pad))], -1)
        return self.encode_x(both_BR2F)

    def _embed(self, x_BRF: torch.Tensor, missing_BRF: torch.Tensor, y_BT: torch.Tensor,
               state: dict[str, Any] | None) -> tuple[torch.Tensor, dict[str, Any]]:
        T = y_BT.shape[1]
        h_BRE = self._rows(x_BRF, missing_BRF)
        h_BRE = torch.cat([h_BRE[:, :T] + self.encode_y(y_BT.unsqueeze(-1)), h_BRE[:, T:]], 1)
        h_BRE, kv = self.layers[0](h_BRE, state["keys_values"] if state is not None else None, T)
        return self.norm(h_BRE[:, T:]), {"keys_values": kv}

    def training_flops(self, num_datasets: int, num_rows: int, num_train_rows: int, num_features: int) -> float:
        E = self.config.embed_dim
        per_row = 2 * (2 * self.config.max_features * E + E * E + 8 * E * E) + 4 * num_train_rows * E
        return 3.0 * num_datasets * num_rows * per_row
