"""Prior workers are sized from the node's CPU budget shared by the ranks on the node, so the ranks of a
multi-GPU node do not each start a worker per core."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from pfnforge import registry
from pfnforge.stream import pool
from pfnforge.train.data import DataConfig, PriorDataModule


@pytest.fixture
def node(monkeypatch):
    """A node of ``cpus`` CPUs as Slurm allocates them, this process bound to ``bound`` of them."""
    def set_node(cpus: int | None, bound: int) -> None:
        if cpus is None:
            monkeypatch.delenv("SLURM_CPUS_ON_NODE", raising=False)
        else:
            monkeypatch.setenv("SLURM_CPUS_ON_NODE", str(cpus))
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(bound)))
        monkeypatch.setattr(pool, "_cgroup_cpus", lambda: None)
    return set_node


@pytest.mark.parametrize("cpus", [2, 4, 8, 16, 32, 64, 72])
@pytest.mark.parametrize("local_ranks", [1, 2, 4, 8])
@pytest.mark.parametrize("trainer_threads", [1, 2])
def test_the_ranks_of_a_node_stay_within_its_cpus(node, cpus, local_ranks, trainer_threads):
    node(cpus, cpus)  # every rank may run anywhere on the node
    workers = pool.default_num_workers(local_ranks, trainer_threads)
    assert workers >= 1
    if cpus >= local_ranks * (trainer_threads + 1):  # room for a worker per rank: the budget holds
        assert local_ranks * (workers + trainer_threads) <= cpus
        assert local_ranks * (workers + 1 + trainer_threads) > cpus  # and no CPU is left idle beyond rounding
    else:
        assert workers == 1


def test_a_process_bound_to_its_own_share_is_not_divided_again(node):
    node(32, 8)  # srun --cpus-per-task=8: this rank's affinity is its share of the 32
    workers, reason = pool.worker_budget(4, 1)
    assert workers == 7 and "CPU affinity of this process (SLURM_CPUS_ON_NODE: 32)" in reason


def test_without_slurm_the_affinity_or_the_cgroup_quota_is_the_budget(node, monkeypatch):
    node(None, 12)
    assert pool.worker_budget(2, 1) == (5, "5 prior workers per rank: 12 CPUs (CPU affinity) / 2 local ranks - "
                                           "1 trainer thread")
    monkeypatch.setattr(pool, "_cgroup_cpus", lambda: 4)  # a container limited to 4 CPUs on a 12-CPU host
    assert pool.worker_budget(2, 1)[0] == 1


def test_the_data_module_sizes_its_pool_from_the_trainers_local_ranks(node):
    node(16, 16)
    datamodule = PriorDataModule(registry.load_prior_class("gp")(), DataConfig())
    datamodule.trainer = SimpleNamespace(num_devices=4, accelerator=SimpleNamespace())  # e.g. 4 GPUs
    assert datamodule._budgeted_workers() == 3
    assert datamodule.worker_decision.startswith("3 prior workers per rank: 16 CPUs (SLURM_CPUS_ON_NODE) / 4 local")
