"""Finding prior servers through a shared file: each ``pfnforge serve --address-file F`` appends the location it
listens on (``grpc://host:port``, one per line) once it is bound; trainers wait until the file lists as many
servers as they expect. On a cluster the file lives on the shared filesystem (see ``slurm/README.md``)."""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path

from pfnforge.errors import ConfigError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def advertised_location(host: str, port: int, advertise: str | None = None) -> str:
    """The address other hosts reach a server bound to ``host:port`` at: ``advertise`` if given, the bound
    address unless it is a wildcard, else this host's name."""
    if advertise is None:
        advertise = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    return f"grpc://{advertise}:{port}"


def publish_location(path: Path, location: str) -> None:
    """Append ``location`` to ``path`` as one line, under an exclusive lock (servers start together)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(location + "\n")
        handle.flush()
        os.fsync(handle.fileno())
        fcntl.flock(handle, fcntl.LOCK_UN)


def read_locations(path: Path) -> list[str]:
    """Complete lines of ``path`` (a line being written is not complete yet), in order, without repeats."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    lines = text.split("\n")[:-1]  # the last piece has no newline yet: not a complete entry
    return list(dict.fromkeys(line.strip() for line in lines if line.strip()))


def wait_for_locations(path: Path, count: int, timeout: float) -> list[str]:
    """The locations in ``path`` once it lists ``count`` of them; a ``ConfigError`` after ``timeout`` seconds."""
    if count < 1:
        raise ConfigError(f"data.num_servers={count} must be >= 1")
    deadline = time.monotonic() + timeout
    while len(locations := read_locations(path)) < count:
        if time.monotonic() > deadline:
            raise ConfigError(f"{path} lists {len(locations)} of {count} prior servers after {timeout:.0f} s: did "
                              "`pfnforge serve --address-file` start (see its log), and is the file on a filesystem "
                              "that both jobs see?")
        time.sleep(0.2)
    return locations
