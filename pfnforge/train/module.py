"""``PFNModule``: the loss (negative log-likelihood of the test rows), the optimiser and its schedule."""

from __future__ import annotations

import collections
import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch

from pfnforge import registry
from pfnforge.errors import ConfigError
from pfnforge.model.api import ArchitectureConfig
from pfnforge.train.data import StepBatch


@dataclass(kw_only=True)
class OptimConfig:
    """AdamW with linear warm-up, then cosine decay to zero at the last step."""

    lr: float = 1e-3
    """Peak learning rate (> 0)."""
    weight_decay: float = 0.0
    """AdamW weight decay (>= 0)."""
    warmup_steps: int = 20
    """Steps of linear warm-up (>= 0)."""

    def __post_init__(self) -> None:
        if not self.lr > 0 or self.weight_decay < 0 or self.warmup_steps < 0:
            raise ConfigError(f"optim: need lr > 0, weight_decay >= 0 and warmup_steps >= 0, got lr={self.lr}, "
                              f"weight_decay={self.weight_decay}, warmup_steps={self.warmup_steps}")


CHECKPOINT_FORMAT_VERSION = 1
"""Version of the ``"pfnforge"`` entry every checkpoint carries (see ``on_save_checkpoint``)."""


class PFNModule(L.LightningModule):
    def __init__(self, model: ArchitectureConfig, optim: OptimConfig, max_steps: int, borders: torch.Tensor | None,
                 *, classification: bool, metadata: dict[str, Any] | None = None) -> None:
        """``metadata``: what a checkpoint must say about the run besides tensors (prior, resolved config,
        input limits); stored under ``"pfnforge"`` so a checkpoint alone rebuilds the model."""
        super().__init__()
        self.model = registry.build_model(model, borders, classification=classification)
        self.model_config = model
        self.optim = optim
        self.max_steps = max_steps
        self.metadata = metadata or {}
        self._last_step_end: float | None = None
        self._wait_marks: collections.deque[tuple[float, float]] = collections.deque(maxlen=11)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Plain types only, so the checkpoint still loads with ``torch.load(..., weights_only=True)``."""
        checkpoint["pfnforge"] = {
            "format_version": CHECKPOINT_FORMAT_VERSION,
            "architecture": self.model.name,
            "model": dataclasses.asdict(self.model_config),
            "classification": self.model.classification_head is not None,
            "regression": self.model.regression_head is not None,
            **self.metadata,
            "global_step": int(self.global_step),
        }

    def configure_model(self) -> None:
        """Under FSDP2 (``trainer.strategy=fsdp2``) shard each layer, then the rest, over the data-parallel mesh."""
        from lightning.pytorch.strategies import ModelParallelStrategy

        if self._trainer is None or not isinstance(self.trainer.strategy, ModelParallelStrategy):
            return
        from torch.distributed.fsdp import fully_shard

        mesh = self.device_mesh["data_parallel"]
        for unit in self.model.shard_units():
            fully_shard(unit, mesh=mesh)
        fully_shard(self.model, mesh=mesh)

    def training_step(self, batch: StepBatch, batch_idx: int) -> torch.Tensor:
        log_likelihood_BT = self.model.test_log_likelihood(batch.x, batch.y, batch.num_train_rows,
                                                           batch.num_classes)
        loss = -log_likelihood_BT.mean()
        # the stream position a checkpoint stores: the batch after this one. Set here, not in a batch-end
        # hook: ModelCheckpoint saves in its own batch-end hook, which Lightning calls first.
        self.trainer.datamodule.next_batch = batch.index + 1
        B, R, F = batch.x.shape
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/nll_per_row", loss.detach())
        self.log("train/batch_index", float(batch.index))
        now = time.perf_counter()
        if self._last_step_end is not None:
            seconds = now - self._last_step_end
            self.log("throughput/datasets_per_s", B / seconds)
            self.log("throughput/rows_per_s", B * R / seconds)
            self.log("throughput/tokens_per_s", self.model.tokens(B, R, F) / seconds)
            self.log("throughput/model_tflops_per_s",
                     self.model.training_flops(B, R, batch.num_train_rows, F) / seconds / 1e12)
        self._last_step_end = now
        source = self.trainer.datamodule.source if self.trainer.datamodule is not None else None
        if source is not None:
            self._log_data_wait(source.stats.wait_seconds, now)
        return loss

    def on_train_start(self) -> None:
        self._wait_marks = collections.deque(maxlen=self.trainer.log_every_n_steps + 1)

    def _log_data_wait(self, total_wait_seconds: float, now: float) -> None:
        """``data/wait_fraction``: the share of the last ``log_every_n_steps`` steps' wall time spent waiting for
        prior batches (a window, so the workers' start-up does not linger in it); ``data/wait_seconds``: all."""
        self._wait_marks.append((total_wait_seconds, now))
        first_wait, first_time = self._wait_marks[0]
        if now > first_time:
            self.log("data/wait_fraction", (total_wait_seconds - first_wait) / (now - first_time))
        self.log("data/wait_seconds", total_wait_seconds)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """The learning rate, and the gradient norm before clipping (sharded gradients are reduced first)."""
        self.log("train/lr", optimizer.param_groups[0]["lr"])
        norms = [p.grad.detach().norm(2) for p in self.parameters() if p.grad is not None]
        if norms:  # DeepSpeed ZeRO 2/3 keeps gradients inside its engine
            norms = [n.full_tensor() if hasattr(n, "full_tensor") else n for n in norms]  # FSDP2 DTensors
            self.log("train/grad_norm", torch.linalg.vector_norm(torch.stack(norms)))

    def validation_step(self, batch: StepBatch, batch_idx: int) -> None:
        log_likelihood_BT = self.model.test_log_likelihood(batch.x, batch.y, batch.num_train_rows,
                                                           batch.num_classes)
        nll = -log_likelihood_BT.mean()
        self.log("val/nll", nll, batch_size=batch.y.shape[0])
        if batch.reference_log_likelihood is not None:
            # nats per test row between the model and the prior's Bayes-optimal predictive (the exact GP posterior,
            # or with hyperpriors the GP posterior integrated over them)
            gap = nll + batch.reference_log_likelihood.mean()
            self.log("val/gap_to_exact", gap, batch_size=batch.y.shape[0])
        if batch.oracle_log_likelihood is not None:
            # the same against the predictive given the drawn hyperparameters, which no model can match
            self.log("val/gap_to_oracle", nll + batch.oracle_log_likelihood.mean(), batch_size=batch.y.shape[0])

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.optim.lr, weight_decay=self.optim.weight_decay)
        warmup, total = self.optim.warmup_steps, max(self.max_steps, 1)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = (step - warmup) / max(total - warmup, 1)
            return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
