"""Hydra glue: every installed prior's ``Config`` becomes the structured config ``prior=<name>``, every installed
architecture's ``Config`` the structured config ``model=<name>``.

Presets in ``configs/prior/*.yaml`` and ``configs/model/*.yaml`` extend those (``defaults: [gp, _self_]``,
``defaults: [cellwise, _self_]``). This module is the only place that turns a raw ``DictConfig`` into a typed,
validated prior or model config.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from pathlib import Path
from typing import TYPE_CHECKING

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pfnforge import registry
from pfnforge.errors import ConfigError, PluginError, UnknownPriorError
from pfnforge.prior import PriorConfig

if TYPE_CHECKING:
    from collections.abc import Callable

    from pfnforge.model.api import ArchitectureConfig


def config_dir() -> Path:
    """The ``configs/`` directory: packaged inside the wheel, or at the top of a source checkout."""
    packaged = Path(__file__).parent / "configs"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "configs"


def register_prior_configs() -> dict[str, PluginError]:
    """Store every loadable prior's ``Config`` in Hydra's ConfigStore; returns the plugins that failed."""
    store = ConfigStore.instance()
    failures = {}
    for name in registry.discover():
        try:
            store.store(group="prior", name=name, node=registry.load_prior_class(name).Config)
        except PluginError as error:
            failures[name] = error
    return failures


def register_model_configs() -> dict[str, PluginError]:
    """Store every loadable architecture's ``Config`` in Hydra's ConfigStore; returns the plugins that failed."""
    store = ConfigStore.instance()
    failures = {}
    for name in registry.discover_models():
        try:
            store.store(group="model", name=name, node=registry.load_model_class(name).Config)
        except PluginError as error:
            failures[name] = error
    return failures


def register_configs() -> dict[str, PluginError]:
    """Both of the above: what composing ``configs/train.yaml`` needs."""
    return {**register_prior_configs(), **register_model_configs()}


def to_model_config(node: DictConfig) -> ArchitectureConfig:
    """The typed, validated architecture config behind a composed ``model`` node. A preset without
    ``defaults: [<architecture>, _self_]`` is read as the row-token architecture's config."""
    from pfnforge.model.pfn import PFN

    config_type = OmegaConf.get_type(node)
    schema = config_type if isinstance(config_type, type) and dataclasses.is_dataclass(config_type) else PFN.Config
    try:
        values = OmegaConf.to_container(node, resolve=True)
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), values))
    except (ConfigError, OmegaConfBaseException) as error:
        raise ConfigError(f"model: {str(error).splitlines()[0]} (valid keys: "
                          f"{', '.join(f.name for f in dataclasses.fields(schema))})") from error


def prior_presets() -> list[str]:
    """Names of the YAML presets in ``configs/prior``."""
    return sorted(path.stem for path in (config_dir() / "prior").glob("*.yaml"))


def _under_prior(override: str) -> str:
    sigil = re.match(r"^(\+\+|\+|~)?", override).group(0)
    return f"{sigil}prior.{override[len(sigil):]}"


def compose_prior_config(name: str, overrides: list[str] | tuple[str, ...] = ()) -> PriorConfig:
    """Compose ``prior=name`` with ``key=value`` overrides (Hydra syntax, relative to the prior)."""
    failures = register_prior_configs()
    if name in failures:
        raise failures[name]
    if name not in registry.discover() and name not in prior_presets():
        registry.entry_for(name)  # raises UnknownPriorError listing what is installed
    try:
        cfg = _compose([f"+prior={name}", *(_under_prior(o) for o in overrides)])
    except (HydraException, OmegaConfBaseException) as error:
        raise _explain(error, name) from error
    return to_prior_config(cfg.prior)


def _compose(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(overrides=overrides)


def to_prior_config(node: DictConfig) -> PriorConfig:
    """Instantiate and validate the typed config behind a composed ``prior`` node. A key the config does not
    have (added with Hydra's ``+prior.KEY=...``) is refused with the valid keys."""
    config_type = OmegaConf.get_type(node)
    if not (isinstance(config_type, type) and issubclass(config_type, PriorConfig)):
        raise ConfigError("the prior config is untyped: a prior preset must start with "
                          "`defaults: [<prior name>, _self_]`")
    unknown = _unknown_key(node)
    if unknown is not None:
        path, valid = unknown
        close = difflib.get_close_matches(path.rsplit(".", 1)[-1], valid, n=1)
        hint = f" Did you mean {'.'.join([*path.split('.')[:-1], close[0]])!r}?" if close else ""
        raise ConfigError(f"prior config {config_type.__name__} has no key {path!r}.{hint} Valid keys there: "
                          f"{', '.join(valid)} (see `pfnforge priors show {_prior_name(config_type)}`)")
    try:
        return OmegaConf.to_object(node)
    except (ConfigError, OmegaConfBaseException) as error:
        field = _invalid_field(node)
        raise ConfigError(f"prior config{' ' + field if field else ''}: {error}") from error


def _prior_name(config_type: type) -> str:
    """The installed prior whose ``Config`` is ``config_type`` (for messages)."""
    for name in registry.discover():
        try:
            if registry.load_prior_class(name).Config is config_type:
                return name
        except PluginError:
            continue
    return "NAME"


def _unknown_key(node: DictConfig, path: str = "") -> tuple[str, list[str]] | None:
    """The dotted path of the first key that a typed (dataclass) node's schema lacks, and that node's valid
    keys; ``None`` when every key is known."""
    schema = OmegaConf.get_type(node)
    if isinstance(schema, type) and dataclasses.is_dataclass(schema):
        valid = [f.name for f in dataclasses.fields(schema)]
        for key in node:
            if key not in valid:
                return f"{path}{key}", valid
    for key, child in node.items_ex(resolve=False):
        if isinstance(child, DictConfig):
            found = _unknown_key(child, f"{path}{key}.")
            if found is not None:
                return found
    return None


def unknown_override_error(message: str, compose_without: Callable[[str], DictConfig]) -> ConfigError | None:
    """For Hydra's "Could not override 'prior.KEY'" (or ``model.KEY``): the error naming the bad key, the close
    match and the valid keys there; ``compose_without(path)`` composes the config without that override."""
    bad = re.search(r"Could not (?:override|append to) '((?:prior|model)\.[^']+)'", message)
    if not bad:
        return None
    parts = bad.group(1).split(".")
    root = compose_without(bad.group(1))
    missing = _missing_key(root, parts)
    if missing is None:
        return None
    depth, hint, valid = missing
    where = (f" (see `pfnforge priors show {_prior_name(OmegaConf.get_type(root.prior))}`)"
             if parts[0] == "prior" and depth else "")
    return ConfigError(f"there is no config key {'.'.join(parts[:depth + 1])!r}.{hint} Valid keys there: "
                       f"{', '.join(valid)}{where}")


def _missing_key(node: DictConfig, parts: list[str]) -> tuple[int, str, list[str]] | None:
    """Walk ``parts`` down ``node``: the depth of the first part that is not there, a "Did you mean" hint for
    it, and the keys that are there; ``None`` when every part exists (or the walk leaves the config nodes)."""
    for depth, part in enumerate(parts):
        if not isinstance(node, DictConfig):
            return None
        if part not in node:
            valid = list(node.keys())
            close = difflib.get_close_matches(part, valid, n=1)
            hint = f" Did you mean {'.'.join([*parts[:depth], close[0]])!r}?" if close else ""
            return depth, hint, valid
        node = node[part]
    return None


def _invalid_field(node: DictConfig, path: str = "") -> str | None:
    """The dotted path of the innermost nested config that fails to instantiate, if any."""
    for key, child in node.items_ex(resolve=False):
        if isinstance(child, DictConfig) and OmegaConf.get_type(child) is not dict:
            try:
                OmegaConf.to_object(child)
            except (ConfigError, OmegaConfBaseException):
                return _invalid_field(child, f"{path}{key}.") or f"{path}{key}"
    return None


def _explain(error: Exception, name: str) -> Exception:
    message = str(error)
    bad_key = re.search(r"Could not (?:override|append to) '([^']+)'", message)
    if bad_key:
        return _unknown_key_error(name, bad_key.group(1), message)
    if "Could not find 'prior/" in message:
        return UnknownPriorError(f"unknown prior {name!r}: no plugin or preset by that name; installed priors: "
                                 f"{', '.join(registry.discover())}; presets: {', '.join(prior_presets())}")
    cause = f" ({str(error.__cause__).splitlines()[0]})" if error.__cause__ else ""
    return ConfigError(f"prior {name!r}: {message.splitlines()[0]}{cause}")


def _unknown_key_error(name: str, path: str, message: str) -> ConfigError:
    parts = path.removeprefix("prior.").split(".")
    missing = _missing_key(_compose([f"+prior={name}"]).prior, parts)
    if missing is None:
        return ConfigError(f"prior {name!r}: {message.splitlines()[-1]}")
    depth, hint, valid = missing
    return ConfigError(f"prior {name!r} has no config key {'.'.join(parts[:depth + 1])!r}.{hint} "
                       f"Valid keys there: {', '.join(valid)} (see `pfnforge priors show {name}`)")
