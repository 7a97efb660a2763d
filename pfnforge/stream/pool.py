"""A pool of worker processes that draw prior batches, hand them over as Arrow IPC files in shared memory,
and survive the death of a worker.

Each worker has its own pipe, so a worker killed mid-write cannot corrupt a queue the others share. A
dispatcher thread reads results and watches process sentinels; when a worker dies (SIGKILL, segfault,
OOM kill) a new one is started and the tasks the dead one held are given to the pool again. Because a
task's result is a pure function of the task, nothing is skipped or repeated. A Python exception in a
worker is returned to whoever waits for that task, with the worker's traceback.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import multiprocessing as mp
import multiprocessing.util  # its exit handler (terminate daemonic children) is registered before ours
import os
import shutil
import signal
import tempfile
import threading
import traceback
import uuid
import weakref
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path

import pyarrow as pa

from pfnforge.errors import PfnforgeError
from pfnforge.prior import Prior
from pfnforge.stream.spec import StreamConfig, from_ipc_bytes, sample_record_batch, to_ipc_bytes


class WorkerError(PfnforgeError):
    """A worker raised while drawing a batch; the message carries the worker's traceback."""


@dataclass(frozen=True)
class Task:
    """Batch ``k`` of ``rank`` in the stream whose ``StreamConfig.key()`` is ``stream_key``."""

    stream_key: str
    rank: int
    k: int


def _cgroup_cpus() -> int | None:
    """The CPU quota of this process's cgroup (v2 ``cpu.max``), rounded up; ``None`` when unlimited or unknown."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else max(1, -(-int(quota) // int(period)))


def cpu_budget() -> tuple[int, str, bool]:
    """(CPUs this job may use on this node, where that figure comes from, whether it is this process's own
    share already): Slurm's ``SLURM_CPUS_ON_NODE``, else the cgroup quota, else the CPU affinity. A process
    bound to fewer CPUs than the node budget (``srun --cpus-per-task``) has its own share."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    slurm = os.environ.get("SLURM_CPUS_ON_NODE", "")
    node, source = (int(slurm), "SLURM_CPUS_ON_NODE") if slurm.isdigit() else (affinity, "CPU affinity")
    quota = _cgroup_cpus()
    if quota is not None and quota < node:
        node, source = quota, "cgroup cpu.max"
    if affinity < node:
        return affinity, f"CPU affinity of this process ({source}: {node})", True
    return node, source, False


def default_num_workers(local_world_size: int = 1, trainer_threads: int = 1) -> int:
    """Prior workers for one rank: its share of the node's CPUs (``cpu_budget``, divided among the
    ``local_world_size`` ranks on the node unless the process is bound to its own share), minus the
    trainer's own threads; at least one."""
    return worker_budget(local_world_size, trainer_threads)[0]


def worker_budget(local_world_size: int = 1, trainer_threads: int = 1) -> tuple[int, str]:
    """``default_num_workers`` and a sentence saying how it was reached (for the log)."""
    cpus, source, own_share = cpu_budget()
    share = cpus if own_share else cpus // max(1, local_world_size)
    workers = max(1, share - trainer_threads)
    ranks = "" if own_share else f" / {local_world_size} local rank{'s' * (local_world_size > 1)}"
    return workers, (f"{workers} prior worker{'s' * (workers > 1)} per rank: {cpus} CPUs ({source}){ranks} "
                     f"- {trainer_threads} trainer thread{'s' * (trainer_threads > 1)}"
                     f"{' (at least one)' if share - trainer_threads < 1 else ''}")


def _shared_memory_dir() -> Path:
    """A fresh directory in shared memory, named after this process; those of dead processes go first."""
    root = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    for stale in root.glob("pfnforge-pool-*"):
        owner = stale.name.split("-")[2]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists() and Path("/proc/self").exists():
            shutil.rmtree(stale, ignore_errors=True)  # left by a pool whose process was killed
    return Path(tempfile.mkdtemp(prefix=f"pfnforge-pool-{os.getpid()}-", dir=root))


def _worker_main(prior: Prior, connection: Connection, directory: str) -> None:
    from threadpoolctl import threadpool_limits

    # Ctrl-C reaches the whole process group: the pool's owner decides when workers stop (it closes their
    # pipes), so a worker neither dies mid-batch nor prints a traceback of its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configs: dict[str, StreamConfig] = {}
    with threadpool_limits(1):  # one core per worker: N workers use N cores
        while True:
            try:
                task = connection.recv()
            except EOFError:  # the pool's process is gone: nothing left to do
                return
            if task is None:
                return
            try:
                config = configs.setdefault(task.stream_key, StreamConfig.from_key(task.stream_key))
                payload = to_ipc_bytes(sample_record_batch(prior, config, task.rank, task.k))
                path = Path(directory) / f"{uuid.uuid4().hex}.arrow"
                with open(path, "wb") as handle:
                    handle.write(payload)
                connection.send(("ok", task, str(path)))
            except Exception:
                connection.send(("error", task, traceback.format_exc()))


_LIVE_POOLS: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_live_pools() -> None:
    """At interpreter exit, before multiprocessing terminates daemonic children (atexit runs last-registered
    first): close every pool still open, so its dispatcher does not replace the terminated workers with new
    processes that then find their parent gone (an ``EOFError`` traceback on the terminal)."""
    for pool in list(_LIVE_POOLS):
        pool.close()


class WorkerPool:
    """Worker processes drawing batches of one prior; thread-safe ``submit``/``take``."""

    def __init__(self, prior: Prior, num_workers: int | None = None) -> None:
        self.prior = prior
        self.num_workers = num_workers or default_num_workers()
        self.directory = _shared_memory_dir()
        self._context = mp.get_context("spawn")  # forking after Numba/OpenMP use is unsafe
        self._lock = threading.Condition()
        self._workers: dict[int, tuple[mp.process.BaseProcess, Connection]] = {}
        self._held: dict[int, set[Task]] = {}
        self._results: dict[Task, tuple[str, str]] = {}
        self._ids = itertools.count()
        self._closed = False
        self._fatal: str | None = None
        self._deaths_since_result = 0
        self.restarts = 0
        # the shared-memory directory goes with the pool, even if the pool is never closed
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self.directory), True)
        try:
            for _ in range(self.num_workers):
                self._start_worker()
        except BaseException:
            self._cleanup()
            raise
        self._dispatcher = threading.Thread(target=self._dispatch, name="pfnforge-pool", daemon=True)
        self._dispatcher.start()
        _LIVE_POOLS.add(self)

    def _start_worker(self) -> None:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_worker_main, args=(self.prior, child, str(self.directory)),
                                        daemon=True, name="pfnforge-prior-worker")
        process.start()
        child.close()
        worker_id = next(self._ids)
        self._workers[worker_id] = (process, parent)
        self._held[worker_id] = set()

    def worker_pids(self) -> list[int]:
        with self._lock:
            return [process.pid for process, _ in self._workers.values()]

    def submit(self, task: Task) -> None:
        """Give ``task`` to the least busy worker (a dead worker's tasks are handed on when it is replaced)."""
        with self._lock:
            if self._closed:
                raise PfnforgeError("the worker pool is closed")
            if self._fatal:
                raise WorkerError(self._fatal)
            worker_id = min(self._held, key=lambda w: len(self._held[w]))
            self._held[worker_id].add(task)
            # a dying worker's pipe refuses: the dispatcher replaces it and resubmits what it held
            with contextlib.suppress(OSError):
                self._workers[worker_id][1].send(task)

    def take_payload(self, task: Task, timeout: float | None = None) -> pa.Buffer:
        """Wait for ``task``; return its Arrow IPC stream bytes, memory-mapped from shared memory."""
        with self._lock:
            ready = self._lock.wait_for(lambda: task in self._results or self._closed or self._fatal, timeout)
            if self._fatal:
                raise WorkerError(self._fatal)
            if not ready:
                raise TimeoutError(f"batch {task.k} of rank {task.rank} not ready after {timeout} s")
            if task not in self._results:
                raise PfnforgeError("the worker pool was closed while waiting for a batch")
            status, detail = self._results.pop(task)
        if status == "error":
            raise WorkerError(f"worker failed on batch {task.k} of rank {task.rank}:\n{detail}")
        with pa.memory_map(detail, "r") as mapped:
            payload = mapped.read_buffer()
        os.unlink(detail)  # the mapping stays valid; the name goes now so nothing leaks
        return payload

    def take(self, task: Task, timeout: float | None = None) -> pa.RecordBatch:
        """Wait for ``task`` and return its record batch (memory-mapped, not copied)."""
        return from_ipc_bytes(self.take_payload(task, timeout), f"batch {task.k} of rank {task.rank}")

    def _dispatch(self) -> None:
        while not self._closed:
            with self._lock:
                connections = {conn: w for w, (_, conn) in self._workers.items()}
                sentinels = {process.sentinel: w for w, (process, _) in self._workers.items()}
            ready = wait([*connections, *sentinels], timeout=0.2)
            dead = {sentinels[r] for r in ready if r in sentinels}
            for connection, worker_id in connections.items():
                if (connection in ready or worker_id in dead) and not self._drain(connection, worker_id):
                    dead.add(worker_id)
            for worker_id in dead:
                self._replace(worker_id)

    def _drain(self, connection: Connection, worker_id: int) -> bool:
        """Record every result waiting in a worker's pipe; False once the pipe is closed."""
        try:
            while connection.poll():
                status, task, detail = connection.recv()
                with self._lock:
                    self._held[worker_id].discard(task)
                    self._results[task] = (status, detail)
                    self._deaths_since_result = 0
                    self._lock.notify_all()
        except (EOFError, OSError):
            return False
        return True

    def _replace(self, worker_id: int) -> None:
        with self._lock:
            if self._closed or worker_id not in self._workers:
                return
            process, connection = self._workers.pop(worker_id)
            orphans = self._held.pop(worker_id)
        if process.is_alive():
            process.kill()
        process.join(5)
        connection.close()
        with self._lock:
            if self._closed:
                return
            self.restarts += 1
            self._deaths_since_result += 1
            if self._deaths_since_result > 2 * self.num_workers + 2:  # a crash loop, not a lost worker
                self._fatal = (f"{self._deaths_since_result} prior workers died (last exit code "
                               f"{process.exitcode}) without producing a batch: run `pfnforge priors sample` "
                               "with the same prior to see the error")
                self._lock.notify_all()
                return
            self._start_worker()
            for task in orphans:
                self.submit(task)

    def wait_until_failed(self) -> str | None:
        """Block until the pool gives up (workers crash without producing batches) or closes; the reason it
        gave up, or ``None`` when it closed."""
        with self._lock:
            self._lock.wait_for(lambda: self._fatal or self._closed)
            return self._fatal

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._lock.notify_all()
            workers = list(self._workers.values())
        for _, connection in workers:
            with contextlib.suppress(OSError):
                connection.send(None)
        for process, connection in workers:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
            connection.close()
        self._cleanup()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
