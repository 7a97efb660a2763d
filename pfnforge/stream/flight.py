"""Prior servers over Arrow Flight: CPU nodes draw batches, GPU nodes stream them.

A ``PriorServer`` owns a ``WorkerPool``. A ``DoGet`` ticket (JSON) names a stream config, a rank and a
range ``[start, start + count)``; the reply is one Flight stream whose rows are ``(k, payload)``, the
payload being batch k's Arrow IPC bytes exactly as a worker wrote them (batch shapes change per step, so
batches travel as opaque IPC messages inside one fixed Flight schema). The action ``pfnforge.fingerprint``
answers the JSON of the server's ``StreamFingerprint`` (its prior, config hash, schema and pfnforge
version). The server binds to 127.0.0.1 unless told otherwise and, given a token, refuses calls without
``authorization: Bearer <token>``.

A ``FlightSource`` reads one rank's stream from a list of servers, spreading ranges over them; when a
server cannot be reached or drops a range midway, the batches it did not deliver are asked again from the
next server in turn (or the same one once it is back), so the consumer sees no gap and no duplicate. Any
other failure (the server's prior raised, a reply that is not a batch, a refused token) ends the stream
with a ``StreamError`` naming the server and its message; a batch that no server delivers within
``give_up_after`` seconds does too, so a consumer never waits forever.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import threading
import time
import warnings
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.flight as flight

from pfnforge.errors import ConfigError, PfnforgeError, StreamError
from pfnforge.prior import Prior
from pfnforge.stream.pool import Task, WorkerError, WorkerPool
from pfnforge.stream.provenance import StreamFingerprint, check_training_source, stream_fingerprint
from pfnforge.stream.sources import BatchSource
from pfnforge.stream.spec import MAX_BATCH_BYTES, StreamConfig, from_ipc_bytes

FLIGHT_SCHEMA = pa.schema([("k", pa.int64()), ("payload", pa.large_binary())])
FINGERPRINT_ACTION = "pfnforge.fingerprint"
_log = logging.getLogger(__name__)


class _TokenCheck(flight.ServerMiddlewareFactory):
    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}"

    def start_call(self, info, headers):
        given = headers.get("authorization", [""])[0] or ""
        if not hmac.compare_digest(given.encode(), self._expected.encode()):  # no timing side channel
            raise flight.FlightUnauthenticatedError(
                "pfnforge prior server: missing or wrong token; pass the server's token file to the client")
        return None


def _payload_row(k: int, payload: pa.Buffer) -> pa.RecordBatch:
    offsets = pa.py_buffer(np.array([0, payload.size], dtype=np.int64))
    column = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, payload])  # no copy of the payload
    return pa.RecordBatch.from_arrays([pa.array([k], pa.int64()), column], schema=FLIGHT_SCHEMA)


def _last_line(text: str) -> str:
    """The exception line of a formatted traceback (``ValueError: ...``), or the text's first line."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if "Traceback (most recent call last)" in text else (lines[0] if lines else text)


class PriorServer(flight.FlightServerBase):
    """Serves batches of ``prior`` for any (stream config, rank, range) a client asks for."""

    def __init__(self, prior: Prior, *, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                 num_workers: int | None = None, prefetch: int | None = None) -> None:
        middleware = {"token": _TokenCheck(token)} if token else {}
        super().__init__(f"grpc://{host}:{port}", middleware=middleware)
        self.host = host
        self.pool = WorkerPool(prior, num_workers)
        self.prefetch = prefetch or 2 * self.pool.num_workers
        self.fingerprint = stream_fingerprint(prior)
        """The prior this server draws from; any seed and rank, so neither is part of it."""
        self.failure: str | None = None
        """Why the server stopped by itself: its workers kept dying without producing a batch."""
        threading.Thread(target=self._stop_when_the_pool_fails, name="pfnforge-server-watch", daemon=True).start()

    def _stop_when_the_pool_fails(self) -> None:
        """A pool that gave up cannot serve again: stop, so that ``serve`` returns and the process can exit
        non-zero for its supervisor (Slurm, systemd) to restart, instead of answering every call with an
        error while looking healthy."""
        failure = self.pool.wait_until_failed()
        if failure:
            self.failure = failure
            _log.error("pfnforge prior server stops: %s", failure)
            self.shutdown()

    @property
    def location(self) -> str:
        return f"grpc://{self.host}:{self.port}"

    def do_get(self, context, ticket: flight.Ticket) -> flight.GeneratorStream:
        try:
            request = json.loads(ticket.ticket)
            config = StreamConfig.from_key(request["stream"])
            rank, start, count = int(request["rank"]), int(request["start"]), int(request["count"])
        except (ValueError, KeyError, TypeError) as error:
            raise flight.FlightServerError(f"bad ticket: {error}") from error
        if count < 0:
            raise flight.FlightServerError(f"bad ticket: count={count} must be >= 0")
        size = config.largest_batch_bytes()
        if size > MAX_BATCH_BYTES:
            raise flight.FlightServerError(
                f"a batch of {config.num_datasets} datasets x {config.num_rows.high} rows x "
                f"{config.num_features.high} features is {size / 2**30:,.1f} GiB, above the "
                f"{MAX_BATCH_BYTES >> 30} GiB a prior server draws: ask for fewer datasets per batch "
                "(data.stream.num_datasets)")
        return flight.GeneratorStream(FLIGHT_SCHEMA, self._rows(config.key(), rank, start, count))

    def list_actions(self, context) -> list[tuple[str, str]]:
        return [(FINGERPRINT_ACTION, "the JSON of the stream fingerprint of the prior this server draws from")]

    def do_action(self, context, action: flight.Action) -> list[flight.Result]:
        if action.type != FINGERPRINT_ACTION:
            raise flight.FlightServerError(f"unknown action {action.type!r}: this server answers "
                                           f"{FINGERPRINT_ACTION!r}")
        return [flight.Result(json.dumps(self.fingerprint.to_json()).encode())]

    def _rows(self, key: str, rank: int, start: int, count: int) -> Iterator[pa.RecordBatch]:
        submitted = untaken = start
        try:
            for k in range(start, start + count):
                while submitted < min(start + count, k + self.prefetch):
                    self.pool.submit(Task(key, rank, submitted))
                    submitted += 1
                untaken = k + 1  # before taking: a batch whose take raises is gone too
                try:
                    payload = self.pool.take_payload(Task(key, rank, k))
                except WorkerError as error:
                    # the full traceback stays in the server's log; the client gets the error itself, without
                    # this host's paths
                    _log.error("batch %d of rank %d failed: %s", k, rank, error)
                    raise flight.FlightServerError(f"prior {self.fingerprint.prior!r} failed on batch {k} of rank "
                                                   f"{rank}: {_last_line(str(error))}") from None
                yield _payload_row(k, payload)
        finally:  # an error or a client that hung up: drop what was drawn for this call
            for k in range(untaken, submitted):
                with contextlib.suppress(PfnforgeError):
                    self.pool.take_payload(Task(key, rank, k))

    def shutdown(self) -> None:
        self.pool.close()  # first: calls waiting on the pool end, so the server can stop
        super().shutdown()


class FlightSource(BatchSource):
    """One rank's batches from one or more prior servers, in order, failing over between servers."""

    def __init__(self, locations: list[str], config: StreamConfig, rank: int = 0, start: int = 0, *,
                 token: str | None = None, chunk: int = 4, prefetch: int = 16, give_up_after: float = 120.0) -> None:
        super().__init__(config, rank, start)
        if not locations:
            raise ConfigError("FlightSource needs at least one server location (grpc://host:port)")
        self.locations = list(locations)
        self.chunk = chunk
        self.prefetch = max(prefetch, chunk)
        self.give_up_after = give_up_after
        self.failovers = 0
        self._headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
        self._options = flight.FlightCallOptions(headers=self._headers, timeout=give_up_after)
        self._clients: dict[str, flight.FlightClient] = {}
        self._lock = threading.Condition()
        self._ready: dict[int, pa.RecordBatch] = {}
        self._error: Exception | None = None
        self._scheduled = start  # every k below this is delivered, ready or being fetched
        self._next_server = 0
        self._threads: list[threading.Thread] = []
        self._closed = False

    def _client(self, location: str) -> flight.FlightClient:
        if location not in self._clients:
            self._clients[location] = flight.FlightClient(location)
        return self._clients[location]

    def server_fingerprint(self, location: str, timeout: float = 10.0) -> StreamFingerprint | None:
        """The fingerprint the server at ``location`` reports, ``None`` from one of a pfnforge that reports
        none; a ``StreamError`` naming it when it cannot be asked within ``timeout`` seconds or refuses."""
        options = flight.FlightCallOptions(headers=self._headers, timeout=timeout)
        try:
            [result] = self._client(location).do_action(flight.Action(FINGERPRINT_ACTION, b""), options)
            return StreamFingerprint.from_json(json.loads(result.body.to_pybytes()), f"prior server {location}")
        except pa.ArrowNotImplementedError:  # a server that predates the action
            return None
        except (flight.FlightError, OSError, ValueError) as error:
            self._clients.pop(location, None)
            reason = str(error).split("\n", 1)[0] or type(error).__name__  # its first line: Flight appends tracebacks
            raise StreamError(f"cannot ask prior server {location} for its stream fingerprint: {reason}") from error

    def _fetch_range(self, start: int, count: int) -> None:
        """Fetch [start, start + count) from some server, failing over until every batch arrived."""
        pending = list(range(start, start + count))
        deadline = time.monotonic() + self.give_up_after
        attempt = 0
        while pending and not self._closed:
            with self._lock:
                location = self.locations[self._next_server % len(self.locations)]
                self._next_server += 1
            ticket = json.dumps({"stream": self.config.key(), "rank": self.rank, "start": pending[0],
                                 "count": len(pending)})
            try:
                reader = self._client(location).do_get(flight.Ticket(ticket.encode()), self._options)
                for chunk in reader:
                    k = chunk.data.column(0)[0].as_py()
                    payload = chunk.data.column(1).buffers()[2]
                    record_batch = from_ipc_bytes(payload, f"batch {k} from {location}")
                    with self._lock:
                        self._ready[k] = record_batch
                        self._lock.notify_all()
                    pending.remove(k)
            except flight.FlightUnauthenticatedError as error:
                self._fail(StreamError(f"prior server {location} refused the token: {error}; give the file it was "
                                       "started with as data.token_file"))
                return
            except flight.FlightServerError as error:  # the server answered: its prior or the ticket failed
                self._fail(StreamError(f"prior server {location} failed on batches from {pending[0]}: {error}"))
                return
            except (flight.FlightError, OSError) as error:  # unreachable, reset or timed out: try elsewhere
                attempt += 1
                self.failovers += 1
                self._clients.pop(location, None)
                if time.monotonic() > deadline:
                    self._fail(StreamError(f"no prior server delivered batches {pending[0]}..{pending[-1]} of "
                                             f"rank {self.rank} for {self.give_up_after:.0f} s; tried "
                                             f"{', '.join(self.locations)}; last error: {error}"))
                    return
                time.sleep(min(0.1 * attempt, 1.0) if attempt >= len(self.locations) else 0.0)
            except Exception as error:  # anything else (a reply that is not a batch, another schema): say so
                self._fail(StreamError(f"prior server {location} sent what this pfnforge cannot read as batches "
                                       f"from {pending[0]} ({type(error).__name__}: {str(error)[:500]}); is it "
                                       "the same pfnforge version, serving the run's prior and overrides?"))
                return

    def _fail(self, error: Exception) -> None:
        with self._lock:
            self._error = error
            self._lock.notify_all()

    def _schedule(self, k: int) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        while self._scheduled < k + self.prefetch and len(self._threads) < 2 * len(self.locations):
            thread = threading.Thread(target=self._fetch_range, args=(self._scheduled, self.chunk), daemon=True)
            thread.start()
            self._threads.append(thread)
            self._scheduled += self.chunk

    def _fetch(self, k: int) -> pa.RecordBatch:
        with self._lock:
            self._schedule(k)
            waited_since = time.monotonic()
            while k not in self._ready:
                if self._error is not None:
                    raise self._error
                if time.monotonic() - waited_since > self.give_up_after + 5:  # the fetchers' own deadline, then some
                    raise StreamError(f"batch {k} of rank {self.rank} did not arrive from {', '.join(self.locations)} "
                                      f"within {self.give_up_after:.0f} s (data.servers_deadline_s)")
                self._lock.wait(0.05)
                self._schedule(k)
            self.stats.queue_depth = len(self._ready) - 1
            return self._ready.pop(k)

    def _reposition(self) -> None:
        with self._lock:
            self._closed = True
        for thread in self._threads:
            thread.join()
        with self._lock:
            self._ready.clear()
            self._threads.clear()
            self._scheduled = self.position
            self._closed = False

    def close(self) -> None:
        self._closed = True
        for thread in self._threads:
            thread.join(timeout=5)
        for client in self._clients.values():
            client.close()


def check_servers(source: FlightSource, run: StreamFingerprint, *, allow_foreign: bool, timeout: float) -> None:
    """Refuse (``ConfigError``) the source's servers that report another prior, config or schema than the run's
    fingerprint ``run``; warn about those that cannot be asked within ``timeout`` seconds (they may start
    later: the stream fails over to them)."""
    hosts: dict[str, str] = {}
    for location in source.locations:
        try:
            found = source.server_fingerprint(location, timeout=timeout)
        except StreamError as error:
            warnings.warn(f"{error}; its batches are not checked against the run's {run.describe_prior()}",
                          RuntimeWarning, stacklevel=2)
            continue
        if found is not None and found.host:
            hosts[location] = found.host
        check_training_source(found, run, source=f"prior server {location}", allow_foreign=allow_foreign,
                              fix="start the servers with the run's prior and overrides (`pfnforge serve <prior> "
                                  "<overrides>`, as slurm/prior_servers.sbatch does)")
    if len(set(hosts.values())) > 1:
        kinds = "; ".join(f"{location}: {host}" for location, host in hosts.items())
        warnings.warn(f"the prior servers run on different CPU or BLAS kernels ({kinds}): a batch drawn again on "
                      "another server after a failover may differ in its last bits (the bnn prior's do; gp and scm "
                      "were measured identical), so a resumed run is not bit-for-bit the uninterrupted one",
                      RuntimeWarning, stacklevel=2)
