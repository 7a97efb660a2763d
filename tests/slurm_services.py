"""Real services for the Slurm tests: a single-host Slurm cluster (``slurm/testing/cluster.sh``), PostgreSQL in a
temporary directory and an ``mlflow server`` against it, all on loopback, all stopped by PID.

Where a binary is missing the tests skip with its name, unless ``PFNFORGE_REQUIRE_SLURM=1`` (set by ``.ci/run``),
where they fail instead: CI must not pass by skipping.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CLUSTER_SCRIPT = REPO / "slurm" / "testing" / "cluster.sh"
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}


def require(*binaries: str) -> dict[str, str]:
    """Paths of ``binaries``; skips (or fails under ``PFNFORGE_REQUIRE_SLURM=1``) naming the missing ones."""
    found = {name: shutil.which(name) or _postgres_bin(name) for name in binaries}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        reason = (f"needs {', '.join(missing)} (Debian: apt-get install slurmctld slurmd slurm-client postgresql; "
                  "see .ci/run)")
        if os.environ.get("PFNFORGE_REQUIRE_SLURM") == "1":
            pytest.fail(f"PFNFORGE_REQUIRE_SLURM=1 but this machine lacks them: {reason}")
        pytest.skip(reason)
    return found  # type: ignore[return-value]


def _postgres_bin(name: str) -> str | None:
    """Debian keeps the server binaries off PATH, in /usr/lib/postgresql/<version>/bin."""
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_group(process: subprocess.Popen, signum: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """End a process started in its own session, and everything it spawned, by its process-group id."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextlib.contextmanager
def postgres() -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL cluster on a loopback port with an empty database ``mlflow``; yields the
    ``POSTGRES_*`` variables that ``docker/tracking/entrypoint.sh`` reads (trust auth: any password works)."""
    paths = require("initdb", "postgres")
    root = Path(tempfile.mkdtemp(prefix="pfnforge-pg-"))
    as_root = os.geteuid() == 0
    user = "postgres" if as_root else None  # initdb refuses to run as root
    if as_root:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    port = free_port()
    subprocess.run([paths["initdb"], "-D", str(root / "data"), "-U", "pfnforge", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True, user=user)
    with open(root / "postgres.log", "wb") as log:  # the child keeps its own descriptor
        server = subprocess.Popen(
            [paths["postgres"], "-D", str(root / "data"), "-p", str(port), "-k", str(root), "-c",
             "listen_addresses=127.0.0.1", "-c", "fsync=off"],
            stdout=subprocess.DEVNULL, stderr=log, user=user, start_new_session=True)
    try:
        import psycopg2

        deadline = time.monotonic() + 60
        while True:
            try:
                connection = psycopg2.connect(host="127.0.0.1", port=port, user="pfnforge", dbname="postgres")
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"PostgreSQL did not start: {(root / 'postgres.log').read_text()[-2000:]}")
                time.sleep(0.2)
        connection.autocommit = True
        connection.cursor().execute("CREATE DATABASE mlflow")
        connection.close()
        yield {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(port), "POSTGRES_DB": "mlflow",
               "POSTGRES_USER": "pfnforge", "POSTGRES_PASSWORD": "unused-with-trust"}
    finally:
        _stop_group(server, signal.SIGINT)  # PostgreSQL's fast shutdown
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def mlflow_server(database: dict[str, str], artifacts: Path) -> Iterator[str]:
    """The site tracking server exactly as its image starts it (``docker/tracking/entrypoint.sh``: ``mlflow
    server`` on PostgreSQL, proxying artifacts to ``artifacts``), on loopback; yields its URL."""
    port = free_port()
    env = dict(os.environ, **database, MLFLOW_HOST="127.0.0.1", MLFLOW_PORT=str(port), MLFLOW_WORKERS="2",
               MLFLOW_ARTIFACTS_DESTINATION=str(artifacts),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    with open(artifacts.parent / "mlflow-server.log", "wb") as log:
        process = subprocess.Popen(["sh", str(REPO / "docker" / "tracking" / "entrypoint.sh")], env=env, stdout=log,
                                   stderr=log, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"mlflow server did not become healthy: {(artifacts.parent / 'mlflow-server.log')}")
            time.sleep(0.5)
        yield url
    finally:
        _stop_group(process)


@dataclass
class Job:
    """What ``scontrol show job`` says about a job."""

    job_id: str
    state: str
    exit_code: str
    restarts: int
    fields: dict[str, str]


class SlurmCluster:
    """The project's cluster script, driven from Python: up once per session, down by PID at the end."""

    def __init__(self, directory: Path) -> None:
        require("slurmctld", "slurmd", "sbatch", "scontrol", "squeue", "scancel")
        self.directory = directory
        # node names do not resolve here: every emulated node is this host
        self.env = dict(os.environ, SLURM_CONF=str(directory / "slurm.conf"), OMP_NUM_THREADS="1",
                        MASTER_ADDR="127.0.0.1",
                        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))

    def up(self) -> None:
        subprocess.run([str(CLUSTER_SCRIPT), "up", str(self.directory)], check=True, capture_output=True)

    def down(self) -> None:
        subprocess.run([str(CLUSTER_SCRIPT), "down", str(self.directory)], check=False, capture_output=True)

    def run(self, *command: str) -> str:
        result = subprocess.run(command, env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def sbatch(self, script: Path, *args: str, options: tuple[str, ...] = (), cwd: Path) -> str:
        """Submit ``script`` with extra sbatch ``options`` before it and ``args`` after it; returns the job id."""
        return self.run("sbatch", "--parsable", f"--chdir={cwd}", *options, str(script), *args).split(";")[0]

    def jobs(self, job_id: str) -> list[Job]:
        """The job, or every task of an array job."""
        jobs = []
        for line in self.run("scontrol", "show", "job", "-o", job_id).splitlines():
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            jobs.append(Job(fields["JobId"], fields["JobState"], fields["ExitCode"], int(fields.get("Restarts", 0)),
                            fields))
        return jobs

    def wait(self, job_id: str, timeout: float) -> list[Job]:
        """Poll until the job (every task of an array) reaches a final state; a requeued job passes through
        PENDING again."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = self.jobs(job_id)
            if all(job.state in FINAL_STATES for job in jobs):
                return jobs
            time.sleep(1)
        with contextlib.suppress(AssertionError):
            self.run("scancel", job_id)
        states = [job.state for job in self.jobs(job_id)]
        raise AssertionError(f"job {job_id} did not finish in {timeout:.0f} s (states {states})")
