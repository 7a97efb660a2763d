"""``pfnforge priors new`` writes a plugin that installs with ``pip install -e``, passes ``pfnforge priors check``
and its own test; ``priors check`` names the check a broken prior fails.

The plugins are installed editable (``pip install --no-build-isolation --no-deps -e``) into a throwaway venv layered
on the test's own (a ``.pth`` adds its site-packages, as a ``--target`` directory on PYTHONPATH, the example
plugin's way in ``conftest.py``, cannot hold an editable install): the shared venv is never changed, nothing is
left to uninstall, and subprocesses run the venv's interpreter."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from pfnforge.cli import main
from pfnforge.contract import CHECKS
from tests.conftest import REPO

GOOD, BROKEN = "scaffold_linear", "scaffold_broken"
# the mistake the kernel's docstring warns of: Numba's global random state instead of draws passed in
NOISE_FROM_ARGUMENT = "noise_std_B[b] * noise_BR[b, r]"
NOISE_FROM_GLOBAL_STATE = "noise_std_B[b] * np.random.standard_normal()"


def _layered_venv(path: Path) -> Path:
    """A venv without pip whose interpreter also sees this interpreter's site-packages; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    site_packages = Path(sysconfig.get_path("purelib", vars={"base": str(path), "platbase": str(path)}))
    outer = sysconfig.get_path("purelib")
    (site_packages / "outer.pth").write_text(f"import site; site.addsitedir({outer!r})\n")
    return path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(plugins: dict, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(plugins["python"]), *args], env=plugins["env"], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def plugins(tmp_path_factory) -> dict:
    """A scaffolded prior as written and one whose kernel is then edited to draw from global state, both installed
    editable; the interpreter that sees them and its environment (with a throwaway Numba cache)."""
    root = tmp_path_factory.mktemp("scaffold")
    assert main(["priors", "new", GOOD, "--dir", str(root)]) == 0
    assert main(["priors", "new", BROKEN, "--dir", str(root)]) == 0
    python = _layered_venv(root / "venv")
    editable = [arg for name in (GOOD, BROKEN) for arg in ("-e", str(root / f"pfnforge-prior-{name}"))]
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-build-isolation", *editable], check=True)
    kernel = root / f"pfnforge-prior-{BROKEN}" / f"pfnforge_prior_{BROKEN}" / "kernel.py"
    assert NOISE_FROM_ARGUMENT in kernel.read_text()
    kernel.write_text(kernel.read_text().replace(NOISE_FROM_ARGUMENT, NOISE_FROM_GLOBAL_STATE))  # after installing
    return {"root": root, "python": python, "env": dict(os.environ, NUMBA_CACHE_DIR=str(root / "numba-cache"))}


def test_new_writes_the_plugin_layout(plugins):
    package = plugins["root"] / f"pfnforge-prior-{GOOD}"
    written = sorted(p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file())
    assert written == ["README.md", f"pfnforge_prior_{GOOD}/__init__.py", f"pfnforge_prior_{GOOD}/kernel.py",
                       "pyproject.toml", "tests/test_contract.py"]
    pyproject = (package / "pyproject.toml").read_text()
    assert '[project.entry-points."pfnforge.priors"]\nscaffold_linear = "pfnforge_prior_scaffold_linear:' \
           'ScaffoldLinearPrior"' in pyproject
    assert 'build-backend = "hatchling.build"' in pyproject
    assert "@numba.njit(cache=True)" in (package / f"pfnforge_prior_{GOOD}" / "kernel.py").read_text()
    assert "pip install -e ." in (package / "README.md").read_text()


def test_written_plugin_is_ruff_clean(plugins):
    package = plugins["root"] / f"pfnforge-prior-{GOOD}"
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=package,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_installed_plugin_passes_check_and_is_listed(plugins):
    result = _run(plugins, "-m", "pfnforge.cli", "priors", "check", GOOD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split()[:2] for line in result.stdout.splitlines() if line.startswith(("PASS", "FAIL"))] == \
        [["PASS", check.name] for check in CHECKS]
    assert result.stdout.strip().endswith(f"{len(CHECKS)} of {len(CHECKS)} checks passed")
    listed = _run(plugins, "-m", "pfnforge.cli", "priors", "list")  # exit 1 would be another plugin failing to load
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:]}
    assert rows[GOOD][1:3] == ["regression", f"pfnforge-prior-{GOOD}"], listed.stdout + listed.stderr


def test_check_exits_1_naming_the_check_a_broken_prior_fails(plugins):
    result = _run(plugins, "-m", "pfnforge.cli", "priors", "check", BROKEN)
    assert result.returncode == 1, result.stdout + result.stderr
    failed = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert failed == ["same_seed_gives_same_bytes"]
    assert "the same seed (123) gave different y: draw every random number from the generator" in result.stdout
    assert result.stdout.strip().endswith(f"{len(CHECKS) - 1} of {len(CHECKS)} checks passed")


def test_the_written_test_passes_inside_the_package(plugins):
    result = _run(plugins, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                  cwd=plugins["root"] / f"pfnforge-prior-{GOOD}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(CHECKS) + 1} passed" in result.stdout


@pytest.mark.parametrize(("name", "message"), [
    ("9lives", "prior name '9lives' is not valid: use a Python identifier"),
    ("my-prior", "prior name 'my-prior' is not valid"),
    ("_hidden", "prior name '_hidden' is not valid"),
    ("gp", r"prior name 'gp' is already installed \(from pfnforge-priors"),
])
def test_new_refuses_a_bad_name_with_exit_code_2(name, message, tmp_path, capsys):
    assert main(["priors", "new", name, "--dir", str(tmp_path)]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not any(tmp_path.iterdir())


def test_new_refuses_a_non_empty_directory_but_fills_an_empty_one(tmp_path, capsys):
    (tmp_path / "pfnforge-prior-fresh").mkdir()
    assert main(["priors", "new", "fresh", "--dir", str(tmp_path)]) == 0
    readme = tmp_path / "pfnforge-prior-fresh" / "README.md"
    readme.write_text("my edits")
    assert main(["priors", "new", "fresh", "--dir", str(tmp_path)]) == 2
    assert "pfnforge-prior-fresh already exists and is not empty: pass another --dir" in capsys.readouterr().err
    assert readme.read_text() == "my edits"


def test_the_templates_ship_in_the_pfnforge_wheel(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp_path), str(REPO)], check=True)
    [wheel] = tmp_path.glob("pfnforge-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    templates = {p.relative_to(REPO).as_posix() for p in (REPO / "pfnforge" / "scaffold" / "prior").rglob("*.tmpl")}
    assert len(templates) == 5 and templates <= shipped


def test_the_api_reference_page_is_what_the_docstrings_say():
    """docs/priors/api.md is written by `pfnforge priors api`; a changed docstring or signature needs a rewrite."""
    from pfnforge.apidoc import render

    page = Path(__file__).parent.parent / "docs" / "priors" / "api.md"
    assert page.read_text() == render(), "run: pfnforge priors api --out docs/priors/api.md"
    assert "### `PriorBatch`" in page.read_text() and "cholesky_inplace(a_RR: np.ndarray, n: int)" in page.read_text()
