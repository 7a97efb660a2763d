"""``pfnforge priors new``: writes an outside prior plugin package from the templates in ``prior/``.

The templates are ``string.Template`` files (``${name}``, ``${package}``, ``${distribution}``, ``${class_name}``,
``${pfnforge_version}``); ``prior/package/`` becomes the import package ``pfnforge_prior_<name>/`` and the
``.tmpl`` suffix is dropped. They ship inside the pfnforge wheel, so the command works from an installed pfnforge.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
from importlib.resources import files
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

from pfnforge import registry
from pfnforge.config import prior_presets
from pfnforge.errors import ConfigError

if TYPE_CHECKING:  # importlib.resources.abc is 3.11+
    from importlib.resources.abc import Traversable

PRIOR_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
"""A prior name: a Python identifier of ASCII letters, digits and underscores that starts with a letter."""


def class_name_for(name: str) -> str:
    """The ``Prior`` subclass a scaffold defines for ``name``: ``noisy_linear`` -> ``NoisyLinearPrior``."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_")) + "Prior"


def check_prior_name(name: str) -> None:
    """Raise a ``ConfigError`` naming the fix unless ``name`` is a fresh, valid prior name."""
    if not PRIOR_NAME.fullmatch(name):
        raise ConfigError(f"prior name {name!r} is not valid: use a Python identifier of ASCII letters, digits and "
                          "underscores that starts with a letter (e.g. noisy_linear); it names the entry point, "
                          "the import package pfnforge_prior_<name> and prior=<name> in Hydra")
    installed = registry.discover()
    if name in installed:
        raise ConfigError(f"prior name {name!r} is already installed (from {installed[name][0].distribution}): "
                          "pick another name, two plugins cannot share one")
    if name in prior_presets():
        raise ConfigError(f"prior name {name!r} is already a preset in configs/prior: pick another name")


def _templates(root: Traversable, relative: str = "") -> list[tuple[str, Traversable]]:
    found = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            found.extend(_templates(entry, f"{relative}{entry.name}/"))
        elif entry.name.endswith(".tmpl"):
            found.append((f"{relative}{entry.name.removesuffix('.tmpl')}", entry))
    return found


def write_prior_plugin(name: str, directory: Path) -> Path:
    """Write the plugin package ``directory/pfnforge-prior-<name>/`` for a new prior and return its path.

    Refuses (``ConfigError``) an invalid or installed name and a target directory that exists and is not empty.
    """
    check_prior_name(name)
    target = directory / f"pfnforge-prior-{name}"
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(f"{target} already exists and is not empty: pass another --dir, pick another name, "
                          "or remove it first")
    package = f"pfnforge_prior_{name}"
    values = {"name": name, "package": package, "distribution": target.name, "class_name": class_name_for(name),
              "pfnforge_version": metadata.version("pfnforge")}
    for relative, template in _templates(files(__package__) / "prior"):
        path = target / relative.replace("package/", f"{package}/", 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template.read_text(encoding="utf-8")).substitute(values), encoding="utf-8")
    return target
