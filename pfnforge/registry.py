"""Finds plugins the same way for first- and third-party distributions: priors through the ``pfnforge.priors``
entry-point group, architectures (model classes) through ``pfnforge.models``.

Listing names reads package metadata only; a plugin module is imported the first time its class is asked
for. Two distributions claiming one name make that name unusable, with an error naming both.
"""

from __future__ import annotations

import difflib
import importlib.metadata as metadata
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from pfnforge.errors import PluginError, UnknownPriorError
from pfnforge.prior import Prior, PriorConfig

if TYPE_CHECKING:  # the model zoo imports torch: not at import time of the prior registry
    import torch

    from pfnforge.model.api import Architecture, ArchitectureConfig

ENTRY_POINT_GROUP = "pfnforge.priors"
MODEL_ENTRY_POINT_GROUP = "pfnforge.models"


@dataclass(frozen=True)
class PriorEntry:
    """One entry point in the ``pfnforge.priors`` (or ``pfnforge.models``) group."""

    name: str
    target: str
    """``module:attribute`` of the ``Prior`` subclass."""
    distribution: str
    """``name version`` of the distribution that declares the entry point."""


def _distribution_label(entry_point: metadata.EntryPoint) -> str:
    dist = entry_point.dist
    return f"{dist.metadata['Name']} {dist.version}" if dist is not None else "an unknown distribution"


def discover(group: str = ENTRY_POINT_GROUP) -> dict[str, list[PriorEntry]]:
    """Every plugin name installed in ``group`` (priors by default), with the entries that claim it (more than
    one is a clash)."""
    found: dict[str, list[PriorEntry]] = {}
    for entry_point in metadata.entry_points(group=group):
        entry = PriorEntry(entry_point.name, entry_point.value, _distribution_label(entry_point))
        claims = found.setdefault(entry.name, [])
        if entry not in claims:
            claims.append(entry)
    return dict(sorted(found.items()))


def entry_for(name: str) -> PriorEntry:
    """The single entry providing ``name``; raises listing the installed priors or naming a clash."""
    installed = discover()
    if name not in installed:
        close = difflib.get_close_matches(name, installed, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownPriorError(f"unknown prior {name!r}.{hint} Installed priors: "
                                f"{', '.join(installed) or 'none'} (see `pfnforge priors list`)")
    claims = installed[name]
    if len(claims) > 1:
        owners = " and ".join(f"{e.distribution} ({e.target})" for e in claims)
        raise PluginError(f"prior name {name!r} is claimed by {owners}: uninstall one of them "
                          "or rename its entry point")
    return claims[0]


def load_prior_class(name: str) -> type[Prior]:
    """Import and check the ``Prior`` subclass registered as ``name``."""
    return _load(entry_for(name))


@cache
def _load(entry: PriorEntry) -> type[Prior]:
    module_name, _, attribute = entry.target.partition(":")
    try:
        module = __import__(module_name, fromlist=["_"])
        cls = getattr(module, attribute)
    except Exception as error:
        raise PluginError(f"prior {entry.name!r} from {entry.distribution} failed to load {entry.target}: "
                          f"{type(error).__name__}: {error}") from error
    if not (isinstance(cls, type) and issubclass(cls, Prior)):
        raise PluginError(f"prior {entry.name!r} from {entry.distribution}: {entry.target} is not a "
                          "pfnforge.prior.Prior subclass")
    if getattr(cls, "name", None) != entry.name:
        raise PluginError(f"prior {entry.name!r} from {entry.distribution}: {entry.target}.name is "
                          f"{getattr(cls, 'name', None)!r}; it must equal the entry-point name")
    if not (isinstance(getattr(cls, "Config", None), type) and issubclass(cls.Config, PriorConfig)):
        raise PluginError(f"prior {entry.name!r} from {entry.distribution}: {entry.target}.Config must be a "
                          "dataclass subclassing pfnforge.prior.PriorConfig")
    return cls


def build_prior(config: PriorConfig) -> Prior:
    """Build the installed prior whose ``Config`` class ``config`` is an instance of."""
    for name in discover():
        try:
            cls = load_prior_class(name)
        except PluginError:
            continue
        if type(config) is cls.Config:
            return cls(config)
    raise UnknownPriorError(f"no installed prior takes a {type(config).__qualname__} config")


def discover_models() -> dict[str, list[PriorEntry]]:
    """Every architecture name installed in the ``pfnforge.models`` group."""
    return discover(MODEL_ENTRY_POINT_GROUP)


def load_model_class(name: str) -> type[Architecture]:
    """Import and check the ``Architecture`` subclass registered as ``name``."""
    installed = discover_models()
    if name not in installed:
        close = difflib.get_close_matches(name, installed, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise PluginError(f"unknown architecture {name!r}.{hint} Installed architectures: "
                          f"{', '.join(installed) or 'none'} (a model plugin registers its class in the "
                          f"{MODEL_ENTRY_POINT_GROUP!r} entry-point group)")
    claims = installed[name]
    if len(claims) > 1:
        owners = " and ".join(f"{e.distribution} ({e.target})" for e in claims)
        raise PluginError(f"architecture name {name!r} is claimed by {owners}: uninstall one of them "
                          "or rename its entry point")
    return _load_model(claims[0])


@cache
def _load_model(entry: PriorEntry) -> type[Architecture]:
    from pfnforge.model.api import Architecture, ArchitectureConfig

    module_name, _, attribute = entry.target.partition(":")
    try:
        cls = getattr(__import__(module_name, fromlist=["_"]), attribute)
    except Exception as error:
        raise PluginError(f"architecture {entry.name!r} from {entry.distribution} failed to load {entry.target}: "
                          f"{type(error).__name__}: {error}") from error
    if not (isinstance(cls, type) and issubclass(cls, Architecture)):
        raise PluginError(f"architecture {entry.name!r} from {entry.distribution}: {entry.target} is not a "
                          "pfnforge.model.api.Architecture subclass")
    if getattr(cls, "name", None) != entry.name:
        raise PluginError(f"architecture {entry.name!r} from {entry.distribution}: {entry.target}.name is "
                          f"{getattr(cls, 'name', None)!r}; it must equal the entry-point name")
    if not (isinstance(getattr(cls, "Config", None), type) and issubclass(cls.Config, ArchitectureConfig)):
        raise PluginError(f"architecture {entry.name!r} from {entry.distribution}: {entry.target}.Config must be "
                          "a dataclass subclassing pfnforge.model.api.ArchitectureConfig")
    return cls


def model_class_for(config: ArchitectureConfig) -> type[Architecture]:
    """The installed architecture whose ``Config`` class ``config`` is an instance of."""
    for name in discover_models():
        try:
            cls = load_model_class(name)
        except PluginError:
            continue
        if type(config) is cls.Config:
            return cls
    raise PluginError(f"no installed architecture takes a {type(config).__qualname__} config")


def build_model(config: ArchitectureConfig, borders: torch.Tensor | None, *, classification: bool) -> Architecture:
    """The network ``config`` describes, with the heads asked for (see ``Architecture.__init__``)."""
    return model_class_for(config)(config, borders, classification=classification)
