"""Kernel expressions such as ``rbf``, ``rbf+periodic`` or ``matern52*periodic``, parsed to arrays for Numba."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pfnforge.blocks.covariance import KERNEL_CODES, NO_TERM
from pfnforge.errors import ConfigError

MAX_TERMS = 4


@dataclass(frozen=True)
class KernelExpression:
    """A parsed kernel: its base terms and whether they multiply (else they are averaged)."""

    terms: tuple[str, ...]
    is_product: bool

    @classmethod
    def parse(cls, text: str) -> KernelExpression:
        compact = text.replace(" ", "").lower()
        if "+" in compact and "*" in compact:
            raise ConfigError(f"kernel {text!r} mixes '+' and '*': use only one operator per expression")
        is_product = "*" in compact
        terms = tuple(compact.split("*" if is_product else "+"))
        unknown = [t for t in terms if t not in KERNEL_CODES]
        if unknown:
            raise ConfigError(f"kernel {text!r}: unknown base kernel(s) {unknown}; choose from "
                              f"{', '.join(KERNEL_CODES)}, joined by '+' or '*'")
        if len(terms) > MAX_TERMS:
            raise ConfigError(f"kernel {text!r} has {len(terms)} terms; at most {MAX_TERMS} are supported")
        return cls(terms, is_product)

    def codes(self, num_slots: int) -> np.ndarray:
        """(num_slots,) int64 base-kernel codes, padded with ``NO_TERM``."""
        codes = np.full(num_slots, NO_TERM, dtype=np.int64)
        codes[: len(self.terms)] = [KERNEL_CODES[t] for t in self.terms]
        return codes
