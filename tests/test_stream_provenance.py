"""A run uses only streams of its own prior and config, and validates on no batch it trains on: shard
manifests and prior servers carry a fingerprint the trainer checks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from pfnforge import registry
from pfnforge.config import compose_prior_config
from pfnforge.errors import ConfigError, SchemaError
from pfnforge.hyperpriors import IntRange
from pfnforge.stream.flight import PriorServer
from pfnforge.stream.provenance import VALIDATION_RANK, host_kernels, prior_config_hash, stream_fingerprint
from pfnforge.stream.shards import ShardSource, write_shards
from pfnforge.stream.spec import StreamConfig, sample_record_batch, to_ipc_bytes
from pfnforge.train.data import DataConfig, PriorDataModule
from tests.conftest import free_port

SEED = 5
STREAM = StreamConfig(seed=SEED, num_datasets=2, num_rows=IntRange(low=12, high=12),
                      num_features=IntRange(low=1, high=1))


@pytest.fixture(scope="module")
def reference_gp():
    """The run's prior: fixed GP hyperparameters, whose exact reference is cheap to compute for validation."""
    return registry.build_prior(compose_prior_config("gp_1d_reference"))


@pytest.fixture(scope="module")
def other_gp():
    """The same prior name with another config: what a run must not mix up with ``reference_gp``."""
    return registry.build_prior(compose_prior_config("gp_1d_reference", ["lengthscale.low=0.3",
                                                                         "lengthscale.high=0.3"]))


@pytest.fixture(scope="module")
def rank1_shards(tmp_path_factory, reference_gp) -> Path:
    """Batches of training rank 1 of the run's seed, written through the library."""
    out = tmp_path_factory.mktemp("rank1") / "shards"
    return write_shards(reference_gp, {}, STREAM, out, 2, rank=1, num_workers=1, progress=False)


def _datamodule(prior, world_size: int = 1, stream: StreamConfig = STREAM, **data) -> PriorDataModule:
    """The data module of a run of ``prior`` on ``world_size`` ranks, as the trainer attaches it."""
    datamodule = PriorDataModule(prior, DataConfig(stream=stream, num_workers=0, **{"num_val_batches": 2, **data}))
    datamodule.trainer = SimpleNamespace(world_size=world_size, global_rank=0)
    return datamodule


@pytest.mark.slow  # `pfnforge generate` in a subprocess
def test_generated_validation_shards_hold_the_run_fingerprint_and_no_training_batch(reference_gp, tmp_path, cli_env):
    default_shards = tmp_path / "val"  # the run's seed and no --rank, as a user writing a validation set would
    result = subprocess.run([sys.executable, "-m", "pfnforge.cli", "generate", "gp_1d_reference", "--seed", str(SEED),
                             "--num-batches", "2", "--datasets", "2", "--rows", "12", "--features", "1",
                             "--out", str(default_shards), "--workers", "1"],
                            env=cli_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"seed {SEED}, rank {VALIDATION_RANK}" in result.stdout and "(the validation rank)" in result.stdout
    fingerprint = ShardSource(default_shards).fingerprint
    assert (fingerprint.prior, fingerprint.seed, fingerprint.ranks) == ("gp", SEED, range(VALIDATION_RANK,
                                                                                            VALIDATION_RANK + 1))
    assert fingerprint.config_hash == prior_config_hash(reference_gp.config)
    accepting = _datamodule(reference_gp, world_size=8, val_shards=str(default_shards))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the run's prior and config, a rank no training rank reads
        assert len(accepting.val_dataloader()) == 2
    written = to_ipc_bytes(next(iter(ShardSource(default_shards)))).to_pybytes()
    training = [to_ipc_bytes(sample_record_batch(reference_gp, STREAM, rank, 0)).to_pybytes() for rank in range(8)]
    assert written not in training
    assert written == to_ipc_bytes(sample_record_batch(reference_gp, STREAM, VALIDATION_RANK, 0)).to_pybytes()


def test_validation_shards_of_another_config_are_refused_naming_both(rank1_shards, other_gp, reference_gp):
    ours, theirs = (prior_config_hash(p.config)[:12] for p in (reference_gp, other_gp))
    foreign = _datamodule(other_gp, val_shards=str(rank1_shards))
    with pytest.raises(ConfigError, match=rf"data.val_shards=.*holds prior gp \(config {ours}, schema 1\), and this "
                                          rf"run trains on prior gp \(config {theirs}, schema 1\).*pfnforge "
                                          r"generate.*data.allow_foreign_stream=true"):
        foreign.val_dataloader()
    allowed = _datamodule(other_gp, val_shards=str(rank1_shards), allow_foreign_stream=True)
    with pytest.warns(RuntimeWarning, match=f"config {ours}.*using it anyway"):
        assert len(allowed.val_dataloader()) == 2


def test_validation_shards_of_a_training_rank_are_refused_only_where_training_reads_that_rank(
        rank1_shards, reference_gp, recwarn):
    assert len(_datamodule(reference_gp, world_size=1, val_shards=str(rank1_shards)).val_dataloader()) == 2
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]  # one rank: rank 1 is not trained on
    with pytest.raises(ConfigError, match=rf"holds seed {SEED}, rank 1, and this run trains on seed {SEED}, ranks "
                                          r"0..1: validation would score the model on rank 1 of its own training "
                                          rf"stream: .*--rank {VALIDATION_RANK}.*data.allow_foreign_stream=true"):
        _datamodule(reference_gp, world_size=2, val_shards=str(rank1_shards)).val_dataloader()
    other_seed = StreamConfig(seed=SEED + 1, num_datasets=2)
    assert len(_datamodule(reference_gp, world_size=2, stream=other_seed, val_shards=str(rank1_shards))
               .val_dataloader()) == 2
    allowed = _datamodule(reference_gp, world_size=2, val_shards=str(rank1_shards), allow_foreign_stream=True)
    with pytest.warns(RuntimeWarning, match="of its own training stream; using it anyway"):
        assert len(allowed.val_dataloader()) == 2


def test_shards_without_a_fingerprint_still_load_with_a_warning(rank1_shards, reference_gp, tmp_path):
    old = shutil.copytree(rank1_shards, tmp_path / "old")
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["fingerprint"]  # as pfnforge wrote manifests before it recorded fingerprints
    (old / "manifest.json").write_text(json.dumps(manifest))
    assert ShardSource(old).fingerprint is None
    with pytest.warns(RuntimeWarning, match="reports no stream fingerprint .* cannot check that it holds prior gp"):
        batches = _datamodule(reference_gp, world_size=2, val_shards=str(old)).val_dataloader()
    assert len(batches) == 2


BROKEN = {
    "not-json": r"manifest.json is not JSON .*: delete it and run the `pfnforge generate` command",
    "no-stream": r"manifest.json lacks stream: delete it and run the `pfnforge generate` command",
    "missing-file": r"batch-r0001-00000001.arrows, batch 1 of .*manifest.json, cannot be read .*run the same "
                    "`pfnforge generate` command again",
    "directory": r"batch-r0001-00000001.arrows is a directory where the manifest lists batch 1's file: remove it",
}


@pytest.mark.parametrize("damage", BROKEN)
def test_a_broken_shard_directory_names_the_path_and_the_fix(rank1_shards, tmp_path, damage):
    out = shutil.copytree(rank1_shards, tmp_path / "shards")
    manifest_path, shard = out / "manifest.json", out / "batch-r0001-00000001.arrows"
    if damage == "not-json":
        manifest_path.write_text('{"files": ')
    elif damage == "no-stream":
        manifest_path.write_text(json.dumps({k: v for k, v in json.loads(manifest_path.read_text()).items()
                                             if k != "stream"}))
    else:
        shard.unlink()
        if damage == "directory":
            shard.mkdir()
    with pytest.raises(SchemaError, match=BROKEN[damage]):
        list(ShardSource(out))


def test_prior_servers_of_another_config_are_refused_and_a_matching_one_streams(reference_gp, other_gp):
    server = PriorServer(reference_gp, num_workers=1)
    try:
        run = _datamodule(reference_gp, servers=[server.location])
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # a matching server: no warning either
            source = run._open(rank=0)
        with source:
            assert source.server_fingerprint(server.location) == stream_fingerprint(reference_gp)
            assert next(source).num_rows == 2
        ours, theirs = (prior_config_hash(p.config)[:12] for p in (reference_gp, other_gp))
        with pytest.raises(ConfigError, match=rf"prior server {server.location} streams prior gp \(config {ours}, "
                                              rf"schema 1\), and this run trains on prior gp \(config {theirs}, "
                                              r"schema 1\): start the servers with the run's prior and overrides.*"
                                              r"data.allow_foreign_stream=true"):
            _datamodule(other_gp, servers=[server.location])._open(rank=0)
        allowed = _datamodule(other_gp, servers=[server.location], allow_foreign_stream=True)
        with pytest.warns(RuntimeWarning, match=f"config {ours}.*using it anyway"), allowed._open(rank=0) as source:
            assert next(source).num_rows == 2
        dead = f"grpc://127.0.0.1:{free_port()}"  # not up yet: the stream fails over to it later, unchecked
        unchecked = _datamodule(reference_gp, servers=[dead, server.location])
        with pytest.warns(RuntimeWarning, match=f"cannot ask prior server {dead} for its stream fingerprint.*not "
                                                "checked"), unchecked._open(rank=0) as source:
            assert next(source).num_rows == 2
    finally:
        server.shutdown()


def test_prior_servers_on_different_cpu_kernels_are_named_in_a_warning(reference_gp):
    servers = [PriorServer(reference_gp, num_workers=1) for _ in range(2)]
    assert servers[0].fingerprint.host == host_kernels() and host_kernels()  # e.g. "znver4, openblas SkylakeX"
    servers[1].fingerprint.host = "x86-64, openblas Prescott"  # as a server on another node type reports
    try:
        run = _datamodule(reference_gp, servers=[s.location for s in servers])
        with pytest.warns(RuntimeWarning, match=rf"different CPU or BLAS kernels .*{servers[1].location}: x86-64, "
                                                "openblas Prescott.*not bit-for-bit"), run._open(rank=0) as source:
            assert next(source).num_rows == 2  # a warning, not a refusal: the batches are the same in law
    finally:
        for server in servers:
            server.shutdown()


@pytest.mark.slow  # a real training run (Lightning, MLflow) against a prior server
def test_the_override_trains_on_a_foreign_prior_server(other_gp, tmp_path):
    from pfnforge.cli.train import compose_train_config
    from pfnforge.train.run import run_training

    server = PriorServer(other_gp, num_workers=1)
    overrides = [f"paths.output_dir={tmp_path / 'run'}", f"logger.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
                 "model.embed_dim=16", "model.num_layers=1", f"data.servers=['{server.location}']",
                 "data.stream.num_datasets=2", "data.num_val_batches=1", "trainer.max_steps=2",
                 "trainer.val_check_interval=2", "trainer.enable_progress_bar=false"]
    try:
        with pytest.raises(ConfigError, match=r"prior server .* streams prior gp .*data.allow_foreign_stream=true"):
            run_training(compose_train_config([*overrides, "run_name=refused"]))
        with pytest.warns(RuntimeWarning, match="using it anyway"):
            out = run_training(compose_train_config([*overrides, "run_name=allowed",
                                                     "data.allow_foreign_stream=true"]))
    finally:
        server.shutdown()
    import torch

    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2


def test_every_validation_shard_is_read_and_checked(reference_gp, tmp_path):
    shards = write_shards(reference_gp, {}, STREAM, tmp_path / "val", 3, rank=VALIDATION_RANK, num_workers=1,
                          progress=False)
    datamodule = _datamodule(reference_gp, val_shards=str(shards), num_val_batches=1)
    assert len(datamodule.val_dataloader()) == 3  # all the shards, not the first num_val_batches
    last = shards / ShardSource(shards).manifest["files"]["2"]["file"]
    last.write_bytes(last.read_bytes()[:-8] + b"corrupt!")
    with pytest.raises(SchemaError, match=rf"{last.name} is corrupt"):
        _datamodule(reference_gp, val_shards=str(shards), num_val_batches=1).val_dataloader()
