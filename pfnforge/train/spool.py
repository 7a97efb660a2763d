"""Metrics that could not reach the tracking server, kept on disk in the order they were logged and sent when
the server answers again (later in the run, at its end, or when the run is resumed).

One JSON line per ``log_metrics`` call: ``{"step": s, "timestamp": ms, "metrics": {key: value}}``, with the
time it was logged (not sent). Lines are removed only after the server accepted them; a resend after a crash
between the two repeats identical (key, value, timestamp, step) entries, which MLflow's stores keep once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

Record = dict
"""``{"step": int, "timestamp": int, "metrics": {str: float}}``."""


class MetricSpool:
    """An append-only file of unsent metric records, drained front to back. Its length is counted from the
    file once and then kept in memory (this process is the file's only writer), so asking it on every logged
    metric while the server is down costs nothing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._count: int | None = None

    def __len__(self) -> int:
        if self._count is None:
            if not self.path.is_file():
                self._count = 0
            else:
                with self.path.open() as handle:
                    self._count = sum(1 for line in handle if line.strip())
        return self._count

    def append(self, record: Record) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self._count = len(self) + 1 if self._count is not None else None

    def drain(self, send: Callable[[list[Record]], None], chunk: int = 200) -> int:
        """Send the records in order, ``chunk`` at a time; stop at the first failure (it propagates) and keep what
        was not sent. Returns how many were sent."""
        if not self.path.is_file():
            return 0
        with self.path.open() as handle:
            records = [json.loads(line) for line in handle if line.strip()]
        sent = 0
        try:
            while sent < len(records):
                send(records[sent:sent + chunk])
                sent += len(records[sent:sent + chunk])
        finally:
            self._keep(records[sent:])
        return sent

    def _keep(self, records: list[Record]) -> None:
        self._count = len(records)
        if not records:
            self.path.unlink(missing_ok=True)
            return
        partial = self.path.with_name(f".{self.path.name}.partial")
        partial.write_text("".join(json.dumps(r) + "\n" for r in records))
        os.replace(partial, self.path)
