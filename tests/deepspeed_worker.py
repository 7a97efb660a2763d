"""Trains the PFN for a few steps with plain DeepSpeed ZeRO on gloo across 2 processes (CPU):
``python -m tests.deepspeed_worker STAGE OUT.json [SAVE_DIR] [--killed-after N | --resume]``: with
``--killed-after N`` both ranks save SAVE_DIR after step N and are then killed (SIGKILL); with ``--resume`` they
load SAVE_DIR (weights, ZeRO optimiser shards, step) and train the remaining steps. Lightning's DeepSpeed
strategy refuses CPUs, so the engine is built directly, with a torch optimiser (a DeepSpeed "optimizer"
section would JIT-build fused Adam)."""

from __future__ import annotations

import json
import os
import signal
import sys

import torch
import torch.distributed as dist

STEPS = 3


def setup_model() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    from pfnforge.model.bar import fit_borders
    from pfnforge.model.pfn import PFN, ModelConfig

    torch.manual_seed(0)
    model = PFN(ModelConfig(embed_dim=32, num_layers=2, num_heads=2, num_buckets=20, max_features=2),
                fit_borders(torch.linspace(-3, 3, 1000), 20))
    return model, torch.optim.AdamW(model.parameters(), lr=1e-2)


def batch(rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    from pfnforge import registry
    from pfnforge.prior import BatchShape

    prior = registry.load_prior_class("gp")()
    sample = prior.sample(__import__("numpy").random.default_rng([rank, step]),
                          BatchShape(num_datasets=4, num_rows=20, num_features=2, num_train_rows=10))
    return torch.from_numpy(sample.x), torch.from_numpy(sample.y)


def loss_of(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -model.test_log_likelihood(x, y, 10, torch.zeros(x.shape[0], dtype=torch.int32)).mean()


class Holder(torch.nn.Module):
    """The PFN under the attribute ``model``, as ``PFNModule`` holds it: state-dict keys ``model.*``."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def test_log_likelihood(self, *args):
        return self.model.test_log_likelihood(*args)


def run(rank: int, world: int, stage: int, out: str, save: str | None = None, killed_after: int | None = None,
        resume: bool = False) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ.get("PFNFORGE_TEST_PORT", "29531"),
                      RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    import deepspeed

    model, optimizer = setup_model()
    config = {"train_micro_batch_size_per_gpu": 4, "gradient_clipping": 1.0, "zero_optimization": {"stage": stage}}
    engine, *_ = deepspeed.initialize(model=Holder(model), optimizer=optimizer, config=config,
                                      dist_init_required=False)
    first = 0
    if resume:
        _, client_state = engine.load_checkpoint(save, tag="checkpoint")
        first = int(client_state["global_step"])
    losses = []
    for step in range(first, STEPS):
        if killed_after is not None and step == killed_after:
            _save(engine, model, save, step)
            dist.barrier()
            os.kill(os.getpid(), signal.SIGKILL)  # as a node failure would: no clean-up, no exit code of ours
        x, y = batch(rank, step)
        loss = loss_of(engine, x, y)
        engine.backward(loss)
        engine.step()
        gathered = [torch.zeros(()) for _ in range(world)]
        dist.all_gather(gathered, loss.detach())
        losses.append(float(torch.stack(gathered).mean()))
    if rank == 0:
        with open(out, "w") as handle:
            json.dump(losses, handle)
    if save and not resume:
        _save(engine, model, save, STEPS)
        if rank == 0 and stage < 3:  # ZeRO 1/2 keep whole parameters on every rank
            torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, f"{out}.weights.pt")
    engine.destroy()  # ZeRO-3 leaves hooks and threads that abort the interpreter's exit otherwise
    dist.barrier()
    dist.destroy_process_group()


def _save(engine, model: torch.nn.Module, save: str, step: int) -> None:
    """The directory Lightning's DeepSpeed strategy writes: shards under tag "checkpoint", the step and pfnforge
    metadata as client state."""
    from pfnforge.inference.artifact import build_random_pfn

    metadata = build_random_pfn(model.config, classification=False).metadata
    engine.save_checkpoint(save, client_state={"global_step": step, "pfnforge": metadata}, tag="checkpoint")


if __name__ == "__main__":
    import torch.multiprocessing as mp

    positional = [a for a in sys.argv[1:] if not a.startswith("--")]
    killed_after = int(sys.argv[sys.argv.index("--killed-after") + 1]) if "--killed-after" in sys.argv else None
    if killed_after is not None:
        positional.remove(str(killed_after))
    mp.spawn(run, args=(2, int(positional[0]), positional[1], positional[2] if len(positional) > 2 else None,
                        killed_after, "--resume" in sys.argv), nprocs=2)
