"""Training under Slurm: checkpoint and requeue on the pre-timeout signal, at a step all ranks agree on.

``sbatch --signal=USR1@180`` (as in ``slurm/train.sbatch``) or ``scancel -s USR1 JOB`` reaches every rank at
a different point of its step. Saving inside the signal handler, as Lightning's own Slurm auto-requeue does,
makes ranks enter the checkpoint's collectives while others are in a gradient all-reduce, and the job hangs.
So the handler only raises a flag; after each optimiser step the ranks agree (one boolean all-reduce)
whether any of them got the signal, and then all of them save ``checkpoints/last.ckpt`` together, rank 0
runs ``scontrol requeue``, and every rank leaves training with exit status 0. The requeued job (same job
id) resumes from that checkpoint, on the same data stream. Without Slurm nothing here is active.
"""

from __future__ import annotations

import os
import signal
import subprocess
import warnings
from pathlib import Path

import lightning as L
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities import rank_zero_info


class Requeued(SystemExit):
    """Leaves ``trainer.fit`` (and ``pfnforge train``) with status 0 once the job is requeued."""

    def __init__(self, job_id: str) -> None:
        super().__init__(0)
        self.job_id = job_id


def requeue_job_id(environ: dict[str, str] | os._Environ = os.environ) -> str:
    """The id ``scontrol requeue`` takes: an array task as ``JOB_TASK``, a heterogeneous job by its leader."""
    if "SLURM_ARRAY_JOB_ID" in environ and "SLURM_ARRAY_TASK_ID" in environ:
        return f"{environ['SLURM_ARRAY_JOB_ID']}_{environ['SLURM_ARRAY_TASK_ID']}"
    return environ.get("SLURM_HET_JOB_ID") or environ.get("SLURM_JOB_ID_HET_GROUP_0") or environ["SLURM_JOB_ID"]


class SlurmRequeue(L.Callback):
    """On ``signum``: save ``checkpoint_dir/last.ckpt`` on all ranks at the same step, requeue, stop."""

    def __init__(self, checkpoint_dir: Path, signum: signal.Signals = signal.SIGUSR1) -> None:
        self.checkpoint_dir = Path(checkpoint_dir)
        self.signum = signum
        self.received = False

    def _on_signal(self, signum: int, frame: object) -> None:
        self.received = True  # only a flag: the work happens at the next step boundary

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # after Lightning's own handlers (registered just before this hook), replacing its USR1 handler
        signal.signal(self.signum, self._on_signal)

    def _requeue(self, job_id: str, trainer: L.Trainer, path: Path) -> bool:
        result = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True)
        if result.returncode != 0:
            warnings.warn(f"scontrol requeue {job_id} failed ({result.stderr.strip()}); the checkpoint at {path} "
                          "is saved: submit the same job again to resume", RuntimeWarning, stacklevel=2)
            return False
        rank_zero_info(f"pfnforge: {signal.Signals(self.signum).name}: saved step {trainer.global_step} to {path}, "
                       f"requeued job {job_id}")
        return True

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if not trainer.strategy.reduce_boolean_decision(self.received, all=False):
            return
        path = self.checkpoint_dir / "last.ckpt"
        trainer.save_checkpoint(path)  # every rank: sharded strategies write their part
        # this step's metrics: Lightning logs them after this hook, which the requeue below never returns to
        trainer._logger_connector.on_batch_end()
        trainer._logger_connector.update_train_step_metrics()
        for logger in trainer.loggers:
            logger.finalize("KILLED")  # this job's part of the tracking run ends here; the requeued job continues it
        # Requeueing sends SIGTERM to every task: ignore it, so that each rank leaves on its own, cleanly
        # (Lightning's SIGTERM handler would broadcast to ranks that are already gone).
        sigterm = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        trainer.strategy.barrier("pfnforge-slurm-requeue")
        job_id = requeue_job_id()
        requeued = trainer.strategy.broadcast(self._requeue(job_id, trainer, path) if trainer.is_global_zero else False)
        if not requeued:  # train on untracked until Slurm ends the job; the checkpoint is there to resume from
            signal.signal(signal.SIGTERM, sigterm)
            self.received = False
            return
        raise Requeued(job_id)


def slurm_callbacks(checkpoint_dir: Path) -> list[L.Callback]:
    """The Slurm requeue callback when this process is a Slurm task (``srun``), else nothing."""
    return [SlurmRequeue(checkpoint_dir)] if SLURMEnvironment.detect() else []
