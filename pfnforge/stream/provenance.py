"""Where a stream's batches come from, and whether a run may use them.

A ``StreamFingerprint`` names a stream's prior, a hash of the prior's resolved config, the batch schema
version, the seed and the ranks it covers, and the pfnforge version that drew it. Shard manifests record
one and prior servers report one; the trainer compares them with its own and refuses (a ``ConfigError``
naming both sides and the fix) a training source of another prior or config, and validation shards of
another prior or config or that hold batches training reads. ``data.allow_foreign_stream=true`` turns each
refusal into a warning.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass

from omegaconf import OmegaConf

from pfnforge import __version__
from pfnforge.arrow import SCHEMA_VERSION
from pfnforge.errors import ConfigError, SchemaError
from pfnforge.prior import Prior, PriorConfig

VALIDATION_RANK = 1 << 29
"""The stream rank validation batches come from (in training and by default in `pfnforge generate`): no
training run has that many ranks."""

OVERRIDE = "data.allow_foreign_stream=true"


@dataclass(kw_only=True)
class StreamFingerprint:
    """What a stream is: equal fingerprints (up to the version) mean the same batches for the same keys."""

    prior: str
    """The prior's name (its entry point, e.g. ``gp`` for the ``gp_1d_reference`` preset)."""
    config_hash: str
    """SHA-256 of the prior's resolved config as canonical JSON: equal configs, equal hashes."""
    schema_version: int
    """The pfnforge batch schema version of the batches."""
    seed: int | None = None
    """The stream seed; ``None`` for a prior server, which draws whatever seed a client asks for."""
    ranks: range | None = None
    """The ranks whose batches the stream holds; ``None`` for a prior server, which serves any rank."""
    pfnforge_version: str = __version__
    """The pfnforge release that drew the batches."""
    host: str | None = None
    """The CPU type and BLAS kernels that drew them (``host_kernels()``, e.g. ``znver4, openblas SkylakeX``):
    a batch's bits are only guaranteed on the same ones (see docs/streaming.md)."""

    def same_prior(self, other: StreamFingerprint) -> bool:
        """Whether both streams draw from the same prior, config and batch schema."""
        return ((self.prior, self.config_hash, self.schema_version) ==
                (other.prior, other.config_hash, other.schema_version))

    def describe_prior(self) -> str:
        """What is drawn, e.g. ``prior gp (config 99d2e155e940, schema 1)``."""
        return f"prior {self.prior} (config {self.config_hash[:12]}, schema {self.schema_version})"

    def describe(self) -> str:
        """One line for messages, e.g. ``prior gp (config 99d2e155e940, schema 1), seed 0, rank 3, pfnforge
        0.1.0``."""
        parts = [self.describe_prior()]
        if self.seed is not None:
            parts.append(f"seed {self.seed}")
        if self.ranks is not None:
            parts.append(_ranks(self.ranks))
        return ", ".join([*parts, f"pfnforge {self.pfnforge_version}"])

    __str__ = describe

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (``ranks`` as ``[start, stop]``); ``from_json`` reads it back."""
        ranks = None if self.ranks is None else [self.ranks.start, self.ranks.stop]
        return {"prior": self.prior, "config_hash": self.config_hash, "schema_version": self.schema_version,
                "seed": self.seed, "ranks": ranks, "pfnforge_version": self.pfnforge_version, "host": self.host}

    @classmethod
    def from_json(cls, data: object, source: str) -> StreamFingerprint:
        """The fingerprint behind ``to_json()``; a ``SchemaError`` naming ``source`` when it is malformed."""
        try:
            ranks = data["ranks"]
            return cls(prior=str(data["prior"]), config_hash=str(data["config_hash"]),
                       schema_version=int(data["schema_version"]),
                       seed=None if data["seed"] is None else int(data["seed"]),
                       ranks=None if ranks is None else range(int(ranks[0]), int(ranks[1])),
                       pfnforge_version=str(data["pfnforge_version"]), host=data.get("host"))
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise SchemaError(f"{source} holds a malformed stream fingerprint ({type(error).__name__}: {error}): "
                              "it was not written by pfnforge; write it again with `pfnforge generate`") from error


def _ranks(ranks: range) -> str:
    return f"rank {ranks.start}" if len(ranks) == 1 else f"ranks {ranks.start}..{ranks.stop - 1}"


def prior_config_hash(config: PriorConfig) -> str:
    """SHA-256 (hex) of a prior config resolved as Hydra resolves it, as canonical JSON."""
    resolved = OmegaConf.to_container(OmegaConf.structured(config), resolve=True, enum_to_str=True)
    return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()


def host_kernels() -> str:
    """The CPU type Numba compiles for and the BLAS kernels in use, e.g. ``znver4, openblas SkylakeX``: what
    decides a batch's last bits besides the seed (fused multiply-adds, vector widths, summation order)."""
    import llvmlite.binding
    from threadpoolctl import threadpool_info

    blas = sorted({f"{info['internal_api']} {info.get('architecture') or '?'}" for info in threadpool_info()
                   if info.get("user_api") == "blas"})
    return ", ".join([llvmlite.binding.get_host_cpu_name(), *blas])


def stream_fingerprint(prior: Prior, *, seed: int | None = None, ranks: range | None = None) -> StreamFingerprint:
    """The fingerprint of ``prior``'s stream for ``seed`` and ``ranks`` (``None``: any, as a server serves),
    drawn on this host."""
    return StreamFingerprint(prior=prior.name, config_hash=prior_config_hash(prior.config),
                             schema_version=SCHEMA_VERSION, seed=seed, ranks=ranks, host=host_kernels())


def check_training_source(found: StreamFingerprint | None, run: StreamFingerprint, *, source: str, fix: str,
                          allow_foreign: bool) -> None:
    """Refuse a training source whose prior, config or schema differ from the run's (a warning instead
    when ``allow_foreign``); warn when it reports no fingerprint. ``fix`` says how to get a matching one."""
    if found is None:
        _unchecked(source, f"it streams {run.describe_prior()}")
    elif not found.same_prior(run):
        _refuse(f"{source} streams {found.describe_prior()}, and this run trains on {run.describe_prior()}", fix,
                allow_foreign)


def check_validation_source(found: StreamFingerprint | None, run: StreamFingerprint, *, source: str,
                            allow_foreign: bool) -> None:
    """Refuse validation batches of another prior, config or schema than the run's, or of the run's seed
    and a rank training reads (the model would be scored on batches it trained on)."""
    if found is None:
        _unchecked(source, f"it holds {run.describe_prior()} and no batch of the training stream (seed {run.seed}, "
                           f"{_ranks(run.ranks)})")
        return
    if not found.same_prior(run):
        _refuse(f"{source} holds {found.describe_prior()}, and this run trains on {run.describe_prior()}",
                "write them again with `pfnforge generate` and the run's prior and overrides", allow_foreign)
    overlap = _shared_ranks(found, run)
    if overlap is not None:
        _refuse(f"{source} holds seed {found.seed}, {_ranks(found.ranks)}, and this run trains on seed {run.seed}, "
                f"{_ranks(run.ranks)}: validation would score the model on {_ranks(overlap)} of its own training "
                "stream", f"write them again with `pfnforge generate` at the reserved validation rank (its default, "
                f"--rank {VALIDATION_RANK}) or with another --seed", allow_foreign)


def _shared_ranks(found: StreamFingerprint, run: StreamFingerprint) -> range | None:
    if found.seed is None or found.ranks is None or run.ranks is None or found.seed != run.seed:
        return None
    shared = range(max(found.ranks.start, run.ranks.start), min(found.ranks.stop, run.ranks.stop))
    return shared if len(shared) else None


def _refuse(problem: str, fix: str, allow_foreign: bool) -> None:
    if allow_foreign:
        warnings.warn(f"{problem}; using it anyway ({OVERRIDE})", RuntimeWarning, stacklevel=3)
        return
    raise ConfigError(f"{problem}: {fix}, or set {OVERRIDE} to use it anyway")


def _unchecked(source: str, claim: str) -> None:
    warnings.warn(f"{source} reports no stream fingerprint (an older pfnforge wrote or serves it): cannot check "
                  f"that {claim}; write or serve it again with this pfnforge to have it checked", RuntimeWarning,
                  stacklevel=3)
