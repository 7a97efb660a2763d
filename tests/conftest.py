"""Shared test set-up: CPU only, the documented example plugin installed into a temporary target dir, a real
``mlflow server`` on loopback, and one tiny trained PFN run shared by the inference tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, timeout_s: float = 120) -> bool:
    """Poll ``url`` until it answers 200 (True), or the process dies or ``timeout_s`` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


@contextlib.contextmanager
def running_mlflow_server(directory: Path, port: int | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real ``mlflow server`` (sqlite backend, artifacts proxied) on loopback, in its own process group,
    which is killed at the end (the server and the helpers it spawned). The same directory and port again:
    the same server after a restart."""
    port = port or free_port()
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{directory / 'server.db'}",
         "--artifacts-destination", str(directory / "artifacts"), "--workers", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    if not wait_for_http(f"{url}/health", process):
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("mlflow server did not become healthy in 120 s")
    try:
        yield url, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture
def mlflow_server(tmp_path):
    with running_mlflow_server(tmp_path) as server:
        yield server


TINY_RUN_TRAINING = ["model.embed_dim=32", "model.num_layers=1", "data.num_workers=0", "data.stream.num_datasets=8",
                     "trainer.max_steps=6", "trainer.checkpoint_every_n_steps=6", "trainer.val_check_interval=6",
                     "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1", "run_name=tiny-gp"]


@pytest.fixture(scope="session")
def tiny_gp_run(tmp_path_factory) -> dict:
    """One tiny GP regression run (6 steps) tracked in its own embedded store and registered at the end of
    training as ``tiny-gp`` with alias ``champion``: its output directory, tracking URI and run id."""
    from mlflow import MlflowClient

    from pfnforge.cli.train import compose_train_config
    from pfnforge.train.run import run_training

    root = tmp_path_factory.mktemp("tiny-gp")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    output_dir = run_training(compose_train_config([
        f"paths.output_dir={root / 'run'}", f"logger.tracking_uri={uri}", *TINY_RUN_TRAINING,
        "registry=default"]))
    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("pfnforge").experiment_id])
    return {"output_dir": output_dir, "tracking_uri": uri, "run_id": run.info.run_id, "root": root}
