"""Shared test set-up: CPU only, the documented example plugin installed into a temporary target dir."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_PLUGIN = REPO / "docs" / "example_plugin"
_EXAMPLE_TARGET = Path(tempfile.mkdtemp(prefix="pfnforge-example-plugin-"))


def pytest_configure(config: pytest.Config) -> None:
    """Install the README's example plugin for real (pip, a wheel build) so every test can discover it."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(_EXAMPLE_TARGET), str(EXAMPLE_PLUGIN)],
        check=True,
    )
    sys.path.insert(0, str(_EXAMPLE_TARGET))


@pytest.fixture(scope="session")
def example_plugin_path() -> Path:
    return _EXAMPLE_TARGET


@pytest.fixture
def cli_env(example_plugin_path: Path) -> dict[str, str]:
    """Environment for running ``python -m pfnforge.cli`` in a subprocess that sees the example plugin."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(example_plugin_path), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def write_distribution(root: Path, name: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """Lay out an installed distribution (dist-info with entry points, plus modules) under ``root``."""
    dist_info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (dist_info / "entry_points.txt").write_text(f"[pfnforge.priors]\n{lines}")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source)
