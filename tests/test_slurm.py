"""The project's sbatch scripts on a real Slurm cluster (two emulated nodes on this host, ``slurm/testing/cluster.sh``),
logging to a real MLflow server backed by a real PostgreSQL. All the jobs are submitted at once (the cluster
queues what does not fit) and each test asserts one job's final state and outputs. CPU-sized overrides; the
"GPUs" are a Slurm GRES count on the emulated nodes (no device is used: trainer=ddp runs on gloo).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import torch

from tests.slurm_services import REPO, Job, SlurmCluster, mlflow_server, postgres

pytestmark = pytest.mark.slow

SLURM = REPO / "slurm"
TINY = ["model.embed_dim=32", "data.stream.num_datasets=8", "trainer.enable_progress_bar=false",
        "trainer.log_every_n_steps=1", "trainer.val_check_interval=1000"]
ONE_NODE_STEPS = 40  # the requeued job and the prior-server job train the same run for as many steps
JOB_TIMEOUT = 600.0


@dataclass
class Jobs:
    cluster: SlurmCluster
    tracking_uri: str
    workdir: Path
    ids: dict[str, str]
    signalled_at: list[float]
    sweep: subprocess.Popen

    def wait(self, name: str) -> Job:
        return self.cluster.wait(self.ids[name], JOB_TIMEOUT)[0]  # a heterogeneous job: its leader

    def wait_array(self, name: str) -> list[Job]:
        return self.cluster.wait(self.ids[name], JOB_TIMEOUT)

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.out").read_text()


def _signal_after_first_checkpoint(cluster: SlurmCluster, job_id: str, checkpoints: Path, done: list[float]) -> None:
    """``scancel -s USR1`` once the job has trained a while (its first step checkpoint exists)."""
    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline and not list(checkpoints.glob("*step=10.ckpt")):
        time.sleep(0.5)
    cluster.run("scancel", "-s", "USR1", job_id)
    done.append(time.monotonic())


@pytest.fixture(scope="module")
def jobs() -> Jobs:
    root = Path(tempfile.mkdtemp(prefix="pfnforge-slurm-"))  # outside pytest's basetemp, which is pruned
    cluster = SlurmCluster(root / "cluster")
    cluster.up()
    try:
        (root / "artifacts").mkdir()
        with postgres() as database, mlflow_server(database, root / "artifacts") as tracking_uri:
            workdir = root / "work"
            workdir.mkdir()
            tracked = [*TINY, f"logger.tracking_uri={tracking_uri}", "trainer=ddp"]
            one_node = ("--nodes=1", "--ntasks-per-node=2", "--gpus-per-node=2", "--cpus-per-task=1", "--time=15")
            ids = {
                "two_nodes": cluster.sbatch(
                    SLURM / "train.sbatch", *tracked, "run_name=two-nodes", "trainer.max_steps=12",
                    "trainer.checkpoint_every_n_steps=6", "data.num_workers=0", cwd=workdir,
                    options=("--nodes=2", "--ntasks-per-node=2", "--gpus-per-node=2", "--cpus-per-task=1",
                             "--time=15", f"--output={workdir}/two_nodes.out")),
                "requeue": cluster.sbatch(
                    SLURM / "train.sbatch", *tracked, "run_name=requeue", f"trainer.max_steps={ONE_NODE_STEPS}",
                    "trainer.checkpoint_every_n_steps=10", "data.num_workers=0", cwd=workdir,
                    options=(*one_node, f"--output={workdir}/requeue.out")),
                "servers": cluster.sbatch(
                    SLURM / "prior_servers.sbatch", "gp_1d_reference", "--", *TINY, "trainer=ddp", "run_name=served",
                    f"trainer.max_steps={ONE_NODE_STEPS}", "trainer.checkpoint_every_n_steps=10", cwd=workdir,
                    options=("--cpus-per-task=1", "--time=15", f"--output={workdir}/servers.out", ":", *one_node)),
            }
            shard_args = ("gp_1d_reference", "--num-batches", "10", "--datasets", "4", "--rows", "20-30",
                          "--features", "1", "--seed", "7", "--out", str(workdir / "shards"))
            ids["array"] = cluster.sbatch(SLURM / "generate.sbatch", *shard_args, cwd=workdir, options=(
                "--array=0-2", "--cpus-per-task=1", "--time=5", f"--output={workdir}/array-%a.out"))
            ids["merge"] = cluster.sbatch(SLURM / "generate.sbatch", *shard_args, cwd=workdir, options=(
                f"--dependency=afterok:{ids['array']}", "--cpus-per-task=1", "--time=5",
                f"--output={workdir}/merge.out"))
            ids["bench"] = cluster.sbatch(
                SLURM / "bench_prior.sbatch", "gp_1d_reference", "--datasets", "4", "--rows", "20", "--features", "1",
                "--repeats", "2", "--warmup", "1", cwd=workdir,
                options=("--cpus-per-task=1", "--time=5", f"--output={workdir}/bench.out"))
            with open(workdir / "sweep.out", "wb") as log:  # Hydra's submitit launcher: an array job, waited for
                sweep = subprocess.Popen(
                    [str(Path(sys.executable).parent / "pfnforge"), "train", "--multirun",
                     "hydra/launcher=submitit_slurm", "hydra.launcher.partition=cpu", "hydra.launcher.cpus_per_task=1",
                     "hydra.launcher.timeout_min=10", *TINY, "trainer.max_steps=2", "data.num_workers=0", "seed=0,1"],
                    cwd=workdir, env=cluster.env, stdout=log, stderr=subprocess.STDOUT)
            signalled: list[float] = []
            threading.Thread(target=_signal_after_first_checkpoint, daemon=True, args=(
                cluster, ids["requeue"], workdir / "outputs" / "requeue" / "checkpoints", signalled)).start()
            yield Jobs(cluster, tracking_uri, workdir, ids, signalled, sweep)
            sweep.kill()
            sweep.wait()
    finally:
        cluster.down()
        shutil.rmtree(root, ignore_errors=True)


def _final_step(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


def _runs(tracking_uri: str, run_name: str) -> list:
    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("pfnforge")
    return client.search_runs([experiment.experiment_id], f"attributes.run_name = '{run_name}'")


def test_two_node_job_trains_and_logs_params_metrics_and_checkpoint_to_the_shared_server(jobs):
    job = jobs.wait("two_nodes")
    assert (job.state, job.exit_code) == ("COMPLETED", "0:0"), jobs.log("two_nodes")[-3000:]
    log = jobs.log("two_nodes")
    assert "Starting with 4 processes" in log and "2 nodes x 2 tasks" in log
    assert _final_step(jobs.workdir / "outputs" / "two-nodes" / "checkpoints" / "last.ckpt") == 12
    [run] = _runs(jobs.tracking_uri, "two-nodes")
    client = mlflow.MlflowClient(jobs.tracking_uri)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert (params["trainer/num_nodes"], params["trainer/devices"]) == ("2", "2")
    assert params["slurm_job_id"] == job.job_id
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == list(range(12))
    assert "last/last.ckpt" in {a.path for a in client.list_artifacts(run.info.run_id, "last")}


def test_usr1_checkpoints_requeues_and_the_job_finishes_from_its_checkpoint(jobs):
    job = jobs.wait("requeue")
    log = jobs.log("requeue")
    assert (job.state, job.exit_code, job.restarts) == ("COMPLETED", "0:0", 1), log[-3000:]
    assert jobs.signalled_at, "the USR1 was never sent"
    saved = re.search(rf"SIGUSR1: saved step (\d+) to \S+last.ckpt, requeued job {job.job_id}", log)
    assert saved, log[-3000:]
    saved_step = int(saved.group(1))
    assert 10 <= saved_step < ONE_NODE_STEPS
    assert "restart 1:" in log
    assert "Restored all states from the checkpoint at outputs/requeue/checkpoints/last.ckpt" in log
    assert _final_step(jobs.workdir / "outputs" / "requeue" / "checkpoints" / "last.ckpt") == ONE_NODE_STEPS
    [run] = _runs(jobs.tracking_uri, "requeue")  # the requeued job continued the first job's run
    assert run.info.status == "FINISHED"
    client = mlflow.MlflowClient(jobs.tracking_uri)
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
    assert sorted(steps) == list(range(ONE_NODE_STEPS))  # no step trained twice, none skipped


def test_prior_servers_feed_the_trainers_of_a_heterogeneous_job_the_same_stream(jobs):
    job = jobs.wait("servers")
    log = jobs.log("servers")
    assert (job.state, job.exit_code) == ("COMPLETED", "0:0"), log[-3000:]
    [port] = re.findall(r"serving prior gp at grpc://0\.0\.0\.0:(\d+) \(1 workers, token required\)", log)
    assert re.search(rf"streaming from 1 prior server\(s\): grpc://\S+:{port}\b", log), log[-3000:]
    # tracked in the default embedded store, which both ranks open at the same moment
    [run] = _runs(f"sqlite:///{jobs.workdir / 'mlflow.db'}", "served")
    assert run.info.status == "FINISHED" and run.data.params["data/num_servers"] == "1"
    served = torch.load(jobs.workdir / "outputs" / "served" / "checkpoints" / "last.ckpt", weights_only=True)
    assert served["global_step"] == ONE_NODE_STEPS
    # the requeued job drew the same run's batches in its own processes: batch k of rank r is the same
    # wherever it is made, and a resume continues the exact run, so both end with the same weights
    jobs.wait("requeue")
    local = torch.load(jobs.workdir / "outputs" / "requeue" / "checkpoints" / "last.ckpt", weights_only=True)
    for name, tensor in served["state_dict"].items():
        assert torch.equal(tensor, local["state_dict"][name]), name


def test_array_job_writes_shards_in_parallel_that_verify_and_match_the_stream(jobs):
    from pfnforge import registry
    from pfnforge.config import compose_prior_config
    from pfnforge.stream.provenance import VALIDATION_RANK
    from pfnforge.stream.shards import ShardSource
    from pfnforge.stream.spec import sample_record_batch

    array = jobs.wait_array("array")
    assert [task.state for task in array] == ["COMPLETED"] * 3
    merge = jobs.wait("merge")
    assert (merge.state, merge.exit_code) == ("COMPLETED", "0:0"), jobs.log("merge")
    logs = [(jobs.workdir / f"array-{i}.out").read_text() for i in range(3)]
    assert [bool(re.search(rf"wrote part {i}/3 of 10 batches", text)) for i, text in enumerate(logs)] == [True] * 3
    source = ShardSource(jobs.workdir / "shards")  # verifies every file's SHA-256 as it reads
    prior = registry.build_prior(compose_prior_config("gp_1d_reference", []))
    batches = list(source)
    assert len(batches) == 10 and not list((jobs.workdir / "shards").glob("manifest.part-*"))
    assert source.rank == VALIDATION_RANK  # `pfnforge generate` writes the validation rank unless told otherwise
    for k in (0, 4, 9):  # one batch of each slice is, byte for byte, the stream's batch k drawn here
        fresh = sample_record_batch(prior, source.config, source.rank, k)
        assert batches[k].serialize().to_pybytes() == fresh.serialize().to_pybytes()


def test_prior_benchmark_job_reports_its_rate_with_one_worker_per_allocated_core(jobs):
    job = jobs.wait("bench")
    log = jobs.log("bench")
    assert (job.state, job.exit_code) == ("COMPLETED", "0:0"), log[-3000:]
    assert float(re.findall(r"datasets/s: ([\d.]+)", log)[-1]) > 0



def test_hydra_sweep_through_the_submitit_slurm_launcher_trains_every_point(jobs):
    assert jobs.sweep.wait(JOB_TIMEOUT) == 0, (jobs.workdir / "sweep.out").read_text()[-3000:]
    for point in (0, 1):
        assert _final_step(jobs.workdir / "multirun" / "pfn" / str(point) / "checkpoints" / "last.ckpt") == 2
    [script] = (jobs.workdir / "multirun" / "pfn" / ".submitit").glob("*/*_submission.sh")
    text = script.read_text()
    assert "#SBATCH --array=0-1" in text and "#SBATCH --partition=cpu" in text
    assert "export OMP_NUM_THREADS=1" in text  # the launcher config's setup line, resolved
