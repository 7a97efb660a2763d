"""The stream is one deterministic sequence, whoever produces it: pools, Flight servers, shards."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest
from pyarrow import flight

from pfnforge import registry
from pfnforge.errors import ConfigError, PfnforgeError, SchemaError, StreamError
from pfnforge.hyperpriors import IntRange
from pfnforge.stream.flight import FlightSource, PriorServer
from pfnforge.stream.pool import WorkerError
from pfnforge.stream.shards import ShardSource, write_shards
from pfnforge.stream.sources import LocalSource
from pfnforge.stream.spec import StreamConfig, batch_shape, sample_record_batch, to_ipc_bytes
from tests.stream_priors import MisbehavingConfig, MisbehavingPrior

CONFIG = StreamConfig(seed=7, num_datasets=4, num_rows=IntRange(low=10, high=40),
                      num_features=IntRange(low=1, high=4))
NUM_BATCHES = 10


def _bytes(record_batches) -> list[bytes]:
    return [to_ipc_bytes(rb).to_pybytes() for rb in record_batches]


@pytest.fixture(scope="module")
def gp():
    return registry.load_prior_class("gp")()


@pytest.fixture(scope="module")
def reference(gp) -> list[bytes]:
    """The stream drawn in this process, one batch at a time: what every producer must reproduce."""
    return _bytes(sample_record_batch(gp, CONFIG, 1, k) for k in range(NUM_BATCHES))


def _take(source, count: int) -> list[bytes]:
    return _bytes(next(source) for _ in range(count))


def test_shapes_agree_across_ranks_while_data_differs(gp):
    shapes = {batch_shape(CONFIG, k).num_rows for k in range(20)}
    assert len(shapes) > 3  # shapes do vary per step ...
    for k in range(5):
        rank0, rank1 = sample_record_batch(gp, CONFIG, 0, k), sample_record_batch(gp, CONFIG, 1, k)
        assert rank0.schema.field("x").type == rank1.schema.field("x").type  # ... identically on every rank
        assert to_ipc_bytes(rank0) != to_ipc_bytes(rank1)


@pytest.mark.parametrize("num_workers", [1, 3])
def test_local_pool_reproduces_the_stream(gp, reference, num_workers):
    with LocalSource(gp, CONFIG, rank=1, num_workers=num_workers, prefetch=4) as source:
        assert _take(source, NUM_BATCHES) == reference
        metrics = source.stats.as_metrics()
    assert metrics["data/batches_per_s"] > 0 and 0 <= metrics["data/wait_fraction"] <= 1


def test_killed_worker_is_replaced_and_nothing_is_skipped_or_repeated(gp, reference):
    with LocalSource(gp, CONFIG, rank=1, num_workers=2, prefetch=6) as source:
        received = _take(source, 3)
        os.kill(source.pool.worker_pids()[0], signal.SIGKILL)  # mid-stream, with batches in flight
        received += _take(source, NUM_BATCHES - 3)
        assert source.pool.restarts == 1
    assert received == reference


def test_worker_that_kills_itself_while_sampling_is_replaced(tmp_path):
    marker = tmp_path / "crash-once"
    marker.touch()
    prior = MisbehavingPrior(MisbehavingConfig(crash_marker=str(marker)))
    expected = _bytes(sample_record_batch(MisbehavingPrior(), CONFIG, 0, k) for k in range(4))
    with LocalSource(prior, CONFIG, num_workers=2) as source:
        assert _take(source, 4) == expected
        assert source.pool.restarts == 1 and not marker.exists()


def test_worker_exception_stops_the_stream_with_its_traceback():
    failing_k = next(k for k in range(50) if batch_shape(CONFIG, k).num_rows == batch_shape(CONFIG, 2).num_rows)
    prior = MisbehavingPrior(MisbehavingConfig(fail_when_rows=batch_shape(CONFIG, failing_k).num_rows))
    with LocalSource(prior, CONFIG, num_workers=2) as source:
        _take(source, failing_k)
        with pytest.raises(WorkerError, match=r"(?s)batch \d+ of rank 0.*Traceback.*ValueError: refusing"):
            next(source)


def test_resume_from_a_saved_position_continues_the_same_stream(gp, reference):
    with LocalSource(gp, CONFIG, rank=1, num_workers=2) as source:
        _take(source, 4)
        state = source.state_dict()
        _take(source, 2)  # run on, then go back as a restarted run would
        source.load_state_dict(state)
        assert _take(source, NUM_BATCHES - 4) == reference[4:]
    with LocalSource(gp, CONFIG, rank=0, num_workers=1) as other_rank, pytest.raises(ConfigError):
        other_rank.load_state_dict(state)


def _start_server(port: int, token_file: Path | None = None, stderr: Path | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "pfnforge.cli", "serve", "gp", "--port", str(port), "--workers", "1"]
    if token_file:
        command += ["--token-file", str(token_file)]
    with open(stderr or os.devnull, "w") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors if stderr else None, text=True,
                                   start_new_session=True)
    line = process.stdout.readline()
    assert "serving prior gp at grpc://127.0.0.1:" in line, line
    return process


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_flight_server_reproduces_the_stream(gp, reference):
    server = PriorServer(gp, num_workers=2)
    try:
        with FlightSource([server.location], CONFIG, rank=1, chunk=3) as source:
            assert _take(source, NUM_BATCHES) == reference
    finally:
        server.shutdown()


def test_flight_server_killed_and_restarted_mid_stream_leaves_no_gap(reference):
    port = _free_port()
    servers = [_start_server(port)]
    try:
        with FlightSource([f"grpc://127.0.0.1:{port}"], CONFIG, rank=1, chunk=2, prefetch=2,
                          give_up_after=60) as source:
            received = _take(source, 3)
            _stop(servers[0])  # kill -9 the server and its workers; it is back a second later
            restart = threading.Timer(1.0, lambda: servers.append(_start_server(port)))
            restart.start()
            received += _take(source, NUM_BATCHES - 3)  # blocks, retrying, until the new server answers
            restart.join()
            assert source.failovers >= 1
        assert received == reference
    finally:
        for server in servers:
            _stop(server)


def test_flight_fails_over_to_another_server(gp, reference):
    alive = PriorServer(gp, num_workers=1)
    dead = f"grpc://127.0.0.1:{_free_port()}"  # nothing listens there
    try:
        with FlightSource([dead, alive.location], CONFIG, rank=1, chunk=2) as source:
            assert _take(source, NUM_BATCHES) == reference
            assert source.failovers >= 1
    finally:
        alive.shutdown()


def test_wrong_or_missing_token_is_refused(tmp_path, reference):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    token_file.chmod(0o644)
    port = _free_port()
    server = _start_server(port, token_file, stderr=tmp_path / "serve.err")
    location = [f"grpc://127.0.0.1:{port}"]
    try:
        assert f"can be read by other users: chmod 600 {token_file}" in (tmp_path / "serve.err").read_text()
        for token in ("wrong", None):
            with FlightSource(location, CONFIG, rank=1, token=token) as source, \
                    pytest.raises(PfnforgeError, match="refused the token"):
                next(source)
        with FlightSource(location, CONFIG, rank=1, token="s3cret") as source:
            assert _take(source, 2) == reference[:2]
    finally:
        _stop(server)


def _write(gp, out: Path) -> Path:
    return write_shards(gp, {"note": "test"}, CONFIG, out, NUM_BATCHES, rank=1, num_workers=2, progress=False)


def test_shards_replay_the_stream_and_end(gp, reference, tmp_path):
    source = ShardSource(_write(gp, tmp_path / "shards"))
    assert len(source) == NUM_BATCHES
    assert _bytes(source) == reference  # iterating stops after the last batch


def test_interrupted_generation_resumes_to_the_same_bytes(gp, reference, tmp_path):
    out = _write(gp, tmp_path / "shards")
    manifest = json.loads((out / "manifest.json").read_text())
    for k in ("3", "7"):  # as if the writer died before these were written
        (out / manifest["files"].pop(k)["file"]).unlink()
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SchemaError, match="has no batch 3: the writer was interrupted"):
        _bytes(ShardSource(out))
    _write(gp, out)
    assert _bytes(ShardSource(out)) == reference


def test_corrupt_or_truncated_shard_is_named(gp, tmp_path):
    out = _write(gp, tmp_path / "shards")
    files = sorted(out.glob("*.arrows"))
    data = bytearray(files[2].read_bytes())
    data[len(data) // 2] ^= 0xFF
    files[2].write_bytes(bytes(data))
    source = ShardSource(out)
    _take(source, 2)
    with pytest.raises(SchemaError, match=rf"{files[2].name} is corrupt"):
        next(source)
    files[4].write_bytes(files[4].read_bytes()[:100])
    source = ShardSource(out, start=4)
    with pytest.raises(SchemaError, match=rf"{files[4].name} is corrupt"):
        next(source)


def test_shards_of_another_schema_version_are_refused(gp, tmp_path):
    out = _write(gp, tmp_path / "shards")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["schema_version"] = 0
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SchemaError, match="schema version 0, this pfnforge reads version 1"):
        ShardSource(out)


def test_generate_cli_writes_a_readable_shard_directory(tmp_path, cli_env):
    out = tmp_path / "cli-shards"
    result = subprocess.run([sys.executable, "-m", "pfnforge.cli", "generate", "gp", "lengthscale.low=0.3",
                             "--num-batches", "3", "--datasets", "2", "--rows", "20-30", "--out", str(out),
                             "--workers", "1"], env=cli_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "3/3 batches" in result.stderr
    source = ShardSource(out)
    assert source.manifest["prior_config"]["lengthscale"]["low"] == 0.3
    assert [rb.num_rows for rb in source] == [2, 2, 2]


def test_prior_failing_on_a_server_stops_the_client_with_the_reason():
    failing_rows = batch_shape(CONFIG, 1).num_rows
    server = PriorServer(MisbehavingPrior(MisbehavingConfig(fail_when_rows=failing_rows)), num_workers=1)
    try:
        with FlightSource([server.location], CONFIG, chunk=2, give_up_after=60) as source:
            start = time.monotonic()
            with pytest.raises(PfnforgeError, match=f"refusing {failing_rows} rows") as failure:
                _take(source, 4)
            assert time.monotonic() - start < 30  # failed fast, not after retrying for give_up_after
            # the exception line only: the worker's traceback (this host's paths) stays in the server's log
            assert "Traceback" not in str(failure.value) and 'File "' not in str(failure.value)
    finally:
        server.shutdown()


def test_a_server_whose_workers_keep_dying_stops_with_the_reason():
    server = PriorServer(MisbehavingPrior(MisbehavingConfig(always_crash=True)), num_workers=1)
    serving = threading.Thread(target=server.serve, daemon=True)
    serving.start()
    try:
        with FlightSource([server.location], CONFIG, chunk=2, give_up_after=60) as source, \
                pytest.raises(StreamError, match=r"prior workers died .* without producing a batch"):
            _take(source, 1)
        serving.join(30)  # the server stopped by itself, so `pfnforge serve` exits 1 for its supervisor
        assert not serving.is_alive() and "without producing a batch" in server.failure
    finally:
        server.shutdown()


def test_a_server_refuses_a_batch_too_large_to_draw():
    server = PriorServer(MisbehavingPrior(), num_workers=1)
    huge = dataclasses.replace(CONFIG, num_datasets=10**9)
    try:
        with FlightSource([server.location], huge, chunk=1, give_up_after=30) as source, \
                pytest.raises(StreamError, match="above the 4 GiB a prior server draws: ask for fewer datasets"):
            _take(source, 1)
        assert server.failure is None  # the server keeps serving reasonable requests
    finally:
        server.shutdown()


class _ForeignServer(flight.FlightServerBase):
    """A Flight server that is not a pfnforge prior server of this version: ``reply`` decides its answer."""

    def __init__(self, reply: str) -> None:
        super().__init__("grpc://127.0.0.1:0")
        self.reply = reply

    def do_get(self, context, ticket):
        if self.reply == "garbage":  # the right Flight schema, a payload that is not a batch
            return flight.RecordBatchStream(pa.table({"k": pa.array([0], pa.int64()),
                                                      "payload": pa.array([b"not IPC"], pa.large_binary())}))
        if self.reply == "other-schema":
            return flight.RecordBatchStream(pa.table({"version": pa.array(["9.9"])}))
        time.sleep(10)  # "silent": accepts the call and answers nothing for longer than the client waits


@pytest.mark.parametrize("reply", ["garbage", "other-schema"])
def test_a_reply_that_is_not_a_batch_ends_the_stream_with_the_servers_name(reply):
    server = _ForeignServer(reply)
    try:
        with FlightSource([f"grpc://127.0.0.1:{server.port}"], CONFIG, chunk=2, give_up_after=30) as source:
            start = time.monotonic()
            with pytest.raises(StreamError, match=f"prior server grpc://127.0.0.1:{server.port} sent what this "
                                                  "pfnforge cannot read.*same pfnforge version"):
                _take(source, 2)
            assert time.monotonic() - start < 20  # at once, not after the deadline
    finally:
        server.shutdown()


def test_a_server_that_never_answers_fails_at_the_deadline():
    server = _ForeignServer("silent")
    try:
        with FlightSource([f"grpc://127.0.0.1:{server.port}"], CONFIG, chunk=2, give_up_after=3) as source:
            start = time.monotonic()
            with pytest.raises(StreamError, match=f"no prior server delivered.*grpc://127.0.0.1:{server.port}"):
                _take(source, 1)
            assert time.monotonic() - start < 15
    finally:
        server.shutdown()
