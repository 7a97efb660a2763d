"""The transformer block every first-party architecture is built from: pre-norm attention of query tokens
onto given keys and values, then an MLP.

Legend: S tokens of a set (batched over any leading dims folded into B), K key/value tokens, E width,
H heads, D = E / H.

Tokens attend to given keys and values (query rows to cached context rows, inducing points to a column's
cells), or, given none, to the first ``num_context`` of their own tokens (all of them by default): context rows
then attend to each other and the rest to the context only. Everything goes through ``forward``, so a block
sharded by FSDP gathers its parameters exactly once per pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    """Pre-norm multi-head attention onto ``keys_values`` plus a residual MLP (none if ``mlp_ratio`` is 0)."""

    def __init__(self, embed_dim: int, num_heads: int, mlp_ratio: int, dropout: float) -> None:
        super().__init__()
        E = embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.norm_attention = nn.LayerNorm(E)
        self.query = nn.Linear(E, E)
        self.key_value = nn.Linear(E, 2 * E)
        self.out = nn.Linear(E, E)
        self.norm_mlp = nn.LayerNorm(E) if mlp_ratio else None
        self.mlp = nn.Sequential(nn.Linear(E, mlp_ratio * E), nn.GELU(), nn.Linear(mlp_ratio * E, E)) \
            if mlp_ratio else None

    def keys_values(self, h_BKE: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, H, K, D) keys and values of tokens ``h_BKE``."""
        B, K, E = h_BKE.shape
        k_BKE, v_BKE = self.key_value(self.norm_attention(h_BKE)).chunk(2, dim=-1)
        H = self.num_heads
        return (k_BKE.reshape(B, K, H, E // H).transpose(1, 2), v_BKE.reshape(B, K, H, E // H).transpose(1, 2))

    def forward(self, h_BSE: torch.Tensor, keys_values: tuple[torch.Tensor, torch.Tensor] | None = None,
                num_context: int | None = None) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """The updated tokens, and the keys and values they attended to (computed from
        ``h_BSE[:, :num_context]`` when ``keys_values`` is ``None``)."""
        if keys_values is None:
            keys_values = self.keys_values(h_BSE[:, :num_context])
        B, S, E = h_BSE.shape
        H = self.num_heads
        q_BHSD = self.query(self.norm_attention(h_BSE)).view(B, S, H, E // H).transpose(1, 2)
        k_BHKD, v_BHKD = keys_values
        a_BHSD = F.scaled_dot_product_attention(q_BHSD, k_BHKD, v_BHKD,
                                                dropout_p=self.dropout if self.training else 0.0)
        h_BSE = h_BSE + self.out(a_BHSD.transpose(1, 2).reshape(B, S, E))
        if self.mlp is not None:
            h_BSE = h_BSE + F.dropout(self.mlp(self.norm_mlp(h_BSE)), self.dropout, self.training)
        return h_BSE, keys_values


def feature_embeddings(num_features: int, width: int, seed: int, device: torch.device | str) -> torch.Tensor:
    """(F, width) fixed random vectors, one per column position, the same for every call with the same seed:
    what lets a column-equivariant model tell columns apart (as TabPFN v2's random feature embeddings do).
    Column j gets the same vector in training and inference; permuting columns permutes the vectors."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(num_features, width, generator=generator).to(device)
