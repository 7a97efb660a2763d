from __future__ import annotations

import subprocess
import sys

import pytest

from pfnforge import registry
from pfnforge.errors import PluginError, UnknownPriorError
from tests.conftest import write_distribution

GOOD_PRIOR = """
from dataclasses import dataclass
from pfnforge.prior import Prior, PriorConfig, Task

@dataclass(kw_only=True)
class Config(PriorConfig):
    pass

class Clash(Prior):
    name = "gp"
    task = Task.regression
    Config = Config
    def sample(self, rng, shape):
        raise NotImplementedError
"""


def test_gp_is_provided_by_the_priors_distribution():
    [entry] = registry.discover()["gp"]
    assert entry.distribution.startswith("pfnforge-priors ")
    assert registry.load_prior_class("gp").__module__ == "pfnforge_priors.gp.prior"


def test_example_plugin_is_discovered_through_its_entry_point():
    [entry] = registry.discover()["sine"]
    assert entry.distribution == "pfnforge-example-sine 0.1.0"
    assert registry.load_prior_class("sine").name == "sine"


def test_unknown_name_lists_installed_priors_and_suggests():
    with pytest.raises(UnknownPriorError, match=r"unknown prior 'gpp'\. Did you mean 'gp'\?.*Installed priors: .*gp"):
        registry.entry_for("gpp")


def test_duplicate_name_names_both_distributions(tmp_path, monkeypatch):
    write_distribution(tmp_path, "rival-gp", {"gp": "rival_gp:Clash"}, {"rival_gp": GOOD_PRIOR})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=r"'gp' is claimed by .* and .*: uninstall one") as error:
        registry.load_prior_class("gp")
    assert "pfnforge-priors 0.1.0" in str(error.value) and "rival-gp 1.0" in str(error.value)
    assert registry.load_prior_class("sine").name == "sine"  # other names still work


def test_plugin_raising_on_import_is_reported_with_its_distribution(tmp_path, monkeypatch):
    write_distribution(tmp_path, "broken-prior", {"broken": "broken_prior:Broken"},
                       {"broken_prior": "raise RuntimeError('missing native library')\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=r"'broken' from broken-prior 1\.0 failed to load.*missing native"):
        registry.load_prior_class("broken")


def test_priors_list_survives_a_broken_plugin(tmp_path, cli_env):
    write_distribution(tmp_path, "broken-prior", {"broken": "broken_prior:Broken"},
                       {"broken_prior": "raise RuntimeError('missing native library')\n"})
    cli_env["PYTHONPATH"] = f"{tmp_path}:{cli_env['PYTHONPATH']}"
    result = subprocess.run([sys.executable, "-m", "pfnforge.cli", "priors", "list"], env=cli_env,
                            capture_output=True, text=True)
    assert result.returncode == 1  # a broken plugin is an error ...
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "regression" in lines["gp"] and "pfnforge-priors" in lines["gp"]  # ... that spares the others
    assert "broken-prior 1.0" in lines["broken"] and "missing native library" in lines["broken"]


def test_entry_point_whose_name_differs_from_the_class_is_refused(tmp_path, monkeypatch):
    write_distribution(tmp_path, "misnamed", {"other": "misnamed_prior:Clash"}, {"misnamed_prior": GOOD_PRIOR})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=r"Clash\.name is 'gp'; it must equal the entry-point name"):
        registry.load_prior_class("other")
