"""The pieces around the Slurm scripts that need no cluster: the submitit launcher configs, the job id a
requeue names, server discovery through a shared file, and training batches read from prior servers."""

from __future__ import annotations

import pytest


def test_submitit_launcher_configs_compose_with_the_trainer_layout():
    from hydra import compose, initialize_config_dir
    from hydra.utils import get_class

    from pfnforge.config import config_dir, register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        slurm = compose("train", overrides=["hydra/launcher=submitit_slurm", "trainer=ddp", "trainer.num_nodes=3",
                                            "hydra.launcher.partition=gpu", "hydra.launcher.account=proj"],
                        return_hydra_config=True).hydra.launcher
        local = compose("train", overrides=["hydra/launcher=submitit_local"], return_hydra_config=True).hydra.launcher
    assert (slurm.nodes, slurm.tasks_per_node, slurm.partition, slurm.account) == (3, 2, "gpu", "proj")
    assert slurm.setup == ["export OMP_NUM_THREADS=8"]
    assert get_class(slurm._target_).__name__ == "SlurmLauncher"
    assert get_class(local._target_).__name__ == "LocalLauncher"


def test_requeue_names_array_tasks_and_heterogeneous_leaders():
    from pfnforge.train.slurm import requeue_job_id

    assert requeue_job_id({"SLURM_JOB_ID": "41"}) == "41"
    assert requeue_job_id({"SLURM_JOB_ID": "43", "SLURM_ARRAY_JOB_ID": "40", "SLURM_ARRAY_TASK_ID": "3"}) == "40_3"
    assert requeue_job_id({"SLURM_JOB_ID": "51", "SLURM_JOB_ID_HET_GROUP_0": "50"}) == "50"


def test_servers_file_counts_complete_lines_and_names_the_file_when_servers_are_missing(tmp_path):
    from pfnforge.errors import ConfigError
    from pfnforge.stream.discovery import advertised_location, publish_location, read_locations, wait_for_locations

    path = tmp_path / "servers.txt"
    publish_location(path, advertised_location("0.0.0.0", 8815, "cpu-node-7"))
    publish_location(path, advertised_location("127.0.0.1", 8816))
    with open(path, "a") as handle:
        handle.write("grpc://half-writ")  # a server still writing its line
    assert read_locations(path) == ["grpc://cpu-node-7:8815", "grpc://127.0.0.1:8816"]
    assert wait_for_locations(path, 2, timeout=1) == read_locations(path)
    with pytest.raises(ConfigError, match=r"servers.txt lists 2 of 3 prior servers"):
        wait_for_locations(path, 3, timeout=0.3)


@pytest.mark.slow  # a server with a spawned worker process
def test_data_module_streams_the_same_batches_from_prior_servers_as_in_process(tmp_path):
    import threading

    from pfnforge import registry
    from pfnforge.errors import ConfigError
    from pfnforge.stream.discovery import publish_location
    from pfnforge.stream.flight import PriorServer
    from pfnforge.train.data import DataConfig, PriorDataModule

    prior = registry.load_prior_class("gp")()
    server = PriorServer(prior, token="s3cret", num_workers=1)
    threading.Thread(target=server.serve, daemon=True).start()
    try:
        publish_location(tmp_path / "servers.txt", server.location)
        (tmp_path / "token").write_text("s3cret\n")
        served, local = (PriorDataModule(prior, config) for config in (
            DataConfig(servers_file=str(tmp_path / "servers.txt"), token_file=str(tmp_path / "token")),
            DataConfig(num_workers=0)))
        served.next_batch = local.next_batch = 3  # as after a resume
        with served._open(rank=1) as remote, local._open(rank=1) as here:
            for _ in range(2):
                assert next(remote).serialize().to_pybytes() == next(here).serialize().to_pybytes()
            assert type(remote).__name__ == "FlightSource"
        unreadable = PriorDataModule(prior, DataConfig(servers=[server.location], token_file=str(tmp_path / "no")))
        with pytest.raises(ConfigError, match=r"data.token_file=.*cannot be read"):
            unreadable._open(rank=0)
    finally:
        server.shutdown()
