"""MLflow tracking that never stops or stalls training.

Every call to the tracking server runs on one background thread behind a bounded queue: a slow or dead
server delays nothing in the training loop. If the server cannot be reached when the run starts, the
run goes on untracked; if it dies mid-run, metrics go to a spool file in the run directory
(``pfnforge.train.spool``) and are sent, in order, once it answers again (retried every ``retry_seconds``,
at the end of training, and when the run resumes); other calls that fail are dropped with a warning. At the
end the queue gets a bounded time to drain, then the checkpoints are uploaded as artifacts.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from pfnforge.train.spool import MetricSpool

# Fail fast on an unreachable server instead of MLflow's default of minutes of retries.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")


@contextlib.contextmanager
def one_at_a_time(tracking_uri: str | None) -> Iterator[None]:
    """Ranks that start together (``srun``) each open the embedded sqlite store, whose first opening creates
    its tables: concurrent migrations of one file fail, so take turns on a lock file next to it."""
    if not tracking_uri or not tracking_uri.startswith("sqlite:///"):
        yield
        return
    path = Path(tracking_uri.removeprefix("sqlite:///")).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


class ResilientMLFlowLogger(MLFlowLogger):
    """``MLFlowLogger`` whose server calls happen on a background thread and may fail without harm."""

    def __init__(self, *args: Any, max_pending: int = 10_000, drain_seconds: float = 30.0,
                 spool: Path | None = None, retry_seconds: float = 10.0, **kwargs: Any) -> None:
        with one_at_a_time(kwargs.get("tracking_uri")):
            super().__init__(*args, **kwargs)
        self._spool = MetricSpool(spool) if spool is not None else None
        self._retry_seconds = retry_seconds
        self._next_retry = 0.0  # a spool left by an earlier attempt of this run is sent on the first metrics
        self._offline = False
        self._failures = 0
        self._drain_seconds = drain_seconds
        self._pending: queue.Queue[Callable[[], None] | None] = queue.Queue(max_pending)
        _ = self.experiment  # create the run now, once, on this thread (fails fast when unreachable)
        self._thread = threading.Thread(target=self._work, name="pfnforge-mlflow", daemon=True)
        self._thread.start()

    @property
    def experiment(self):  # the run is created on first use: a dead server turns the logger offline
        if self._offline:
            return None
        try:
            return super().experiment
        except Exception as error:
            self._go_offline(f"cannot start a run at {self._tracking_uri}: {error}")
            return None

    @property
    def run_id(self) -> str | None:
        return None if self.experiment is None else self._run_id

    def _go_offline(self, reason: str) -> None:
        self._offline = True
        warnings.warn(f"MLflow tracking is off for this run ({reason}); training goes on and checkpoints stay "
                      "on local disk", RuntimeWarning, stacklevel=3)

    def _submit(self, call: Callable[[], None]) -> None:
        if self._offline:
            return
        try:
            self._pending.put_nowait(call)
        except queue.Full:
            self._failed("the queue of pending tracking calls is full; dropping")

    def _failed(self, message: str) -> None:
        self._failures += 1
        if self._failures in (1, 10, 100) or self._failures % 1000 == 0:
            warnings.warn(f"MLflow: {message} ({self._failures} failed or dropped calls so far)", RuntimeWarning,
                          stacklevel=2)

    def _work(self) -> None:
        while (call := self._pending.get()) is not None:
            try:
                call()
            except Exception as error:
                self._failed(f"a tracking call failed: {type(error).__name__}: {str(error)[:200]}")
            finally:
                self._pending.task_done()
        self._pending.task_done()

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        record = {"step": int(step or 0), "timestamp": int(time.time() * 1000),  # the time it was logged
                  "metrics": {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}}
        if self._spool is None:
            self._submit(lambda: self._send([record]))
        else:
            self._submit(lambda: self._send_or_spool(record))

    def _send(self, records: list[dict]) -> None:
        from mlflow.entities import Metric

        metrics = [Metric(key, value, r["timestamp"], r["step"])
                   for r in records for key, value in r["metrics"].items()]
        for start in range(0, len(metrics), 1000):
            self.experiment.log_batch(self._run_id, metrics=metrics[start:start + 1000])

    def _send_or_spool(self, record: dict | None) -> None:
        """Send ``record`` after anything spooled before it; while the server is down (or not yet retried),
        append it to the spool. ``None``: only try to drain the spool."""
        assert self._spool is not None
        if len(self._spool) and time.monotonic() >= self._next_retry:
            try:
                self._spool.drain(self._send)
            except Exception as error:
                self._next_retry = time.monotonic() + self._retry_seconds
                self._failed(f"the tracking server still does not answer ({type(error).__name__}); "
                             f"{len(self._spool)} metric records wait in {self._spool.path}")
        if record is None:
            return
        if len(self._spool):  # keep the order: nothing overtakes what is waiting
            self._spool.append(record)
            return
        try:
            self._send([record])
        except Exception as error:
            self._spool.append(record)
            self._next_retry = time.monotonic() + self._retry_seconds
            self._failed(f"metrics spooled to {self._spool.path} ({type(error).__name__}: {str(error)[:120]})")

    def log_hyperparams(self, params: Any) -> None:
        self._submit(lambda: MLFlowLogger.log_hyperparams(self, params))

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Set tags of the run, in the background."""
        tags = dict(tags)
        if tags:
            self._submit(lambda: [self.experiment.set_tag(self._run_id, k, v) for k, v in tags.items()])

    def log_file(self, path: str) -> None:
        """Upload a file as an artifact of the run, in the background."""
        self._submit(lambda: self.experiment.log_artifact(self._run_id, path))

    def after_save_checkpoint(self, checkpoint_callback) -> None:
        self._submit(lambda: MLFlowLogger.after_save_checkpoint(self, checkpoint_callback))

    def finalize(self, status: str = "success") -> None:
        if not self._thread.is_alive():  # finalized before: a correction of the status (e.g. KILLED), sent now
            if not self._offline:
                try:
                    MLFlowLogger.finalize(self, status)
                except Exception as error:
                    self._failed(f"setting the run's status to {status} failed: {type(error).__name__}: {error}")
            return
        if self._spool is not None:  # a last try for what waits in the spool (else the next resume sends it)
            self._submit(lambda: (setattr(self, "_next_retry", 0.0), self._send_or_spool(None)))
        self._submit(lambda: MLFlowLogger.finalize(self, status))
        self._pending.put(None)
        deadline = time.monotonic() + self._drain_seconds
        while self._thread.is_alive() and time.monotonic() < deadline:
            self._thread.join(timeout=0.1)
        if self._thread.is_alive():
            warnings.warn(f"MLflow: gave up waiting for the tracking server after {self._drain_seconds:.0f} s; "
                          "some metrics or artifacts were not sent", RuntimeWarning, stacklevel=2)
