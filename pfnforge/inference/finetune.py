"""Fine-tuning a trained PFN on one dataset: ``finetune`` holds out a seeded validation split, preprocesses the
table as the estimators do (``finetune_data``), and takes AdamW steps on the pretraining loss (the negative
log-likelihood of query rows given context rows: cross-entropy over the model's classes, or the bar
distribution's NLL in standardised target units) over random context/query splits of the fine-tune rows. Every
``eval_every`` steps it scores the validation rows given all fine-tune rows as context, keeps the best weights
and stops after ``patience`` evaluations without improvement; the result holds the best weights, which are the
original ones when no step improved on them.

Legend: B splits of one step, R rows of a split, F features.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from pfnforge.errors import ConfigError, InputError
from pfnforge.inference.artifact import TrainedPFN
from pfnforge.inference.finetune_data import prepare, sample_splits, validation_loss

_TRAINABLE = re.compile(r"^(all|heads|last:[1-9][0-9]*)$")


@dataclass(kw_only=True)
class FinetuneConfig:
    """How ``finetune`` adapts a trained PFN to one dataset."""

    max_steps: int = 100
    """Optimiser steps at most (>= 1)."""
    learning_rate: float = 1e-4
    """AdamW learning rate, constant (> 0); pretraining peaks near 1e-3, fine-tuning stays well below."""
    weight_decay: float = 0.0
    """AdamW weight decay (>= 0)."""
    max_grad_norm: float = 1.0
    """Clip the gradient norm of each step to this (0: no clipping), as pretraining does."""
    validation_fraction: float = 0.2
    """Share of the rows held out to choose the weights and stop by (in (0, 1))."""
    eval_every: int = 10
    """Steps between validation losses (>= 1); the last step is always scored."""
    patience: int = 3
    """Validation losses in a row without improvement before stopping (>= 1)."""
    batch_datasets: int = 8
    """Random context/query splits of the fine-tune rows per step (>= 1)."""
    query_fraction: tuple[float, float] = (0.2, 0.5)
    """Range of the share of a split's rows that are query rows (the rest are context), drawn per step."""
    trainable: str = "all"
    """``all``; ``heads`` (the output heads only); ``last:N`` (the last N blocks, the output norm and the heads)."""
    num_views: int = 4
    """Ensemble views of the table (feature order, class order, transform, as the estimator's ensemble builds
    them with ``n_estimators=num_views``); each split uses one at random, so the model fits every view."""
    seed: int = 0
    """Seeds the validation split, the views and the splits: the same seed gives the same weights."""

    def __post_init__(self) -> None:
        for name in ("max_steps", "eval_every", "patience", "batch_datasets", "num_views"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"finetune {name}={value!r} is out of range: it must be an integer >= 1")
        if not self.learning_rate > 0 or not self.weight_decay >= 0 or not self.max_grad_norm >= 0:
            raise ConfigError(f"finetune needs learning_rate > 0, weight_decay >= 0 and max_grad_norm >= 0, got "
                              f"{self.learning_rate}, {self.weight_decay} and {self.max_grad_norm}")
        if not 0 < self.validation_fraction < 1:
            raise ConfigError(f"finetune validation_fraction={self.validation_fraction} is out of range: pass a "
                              "share in (0, 1), e.g. 0.2")
        low, high = (*map(float, self.query_fraction), 0.0, 0.0)[:2]
        if len(self.query_fraction) != 2 or not 0 < low <= high < 1:
            raise ConfigError(f"finetune query_fraction={self.query_fraction} must be a range (low, high) with "
                              "0 < low <= high < 1, e.g. (0.2, 0.5)")
        if not _TRAINABLE.match(str(self.trainable)):
            raise ConfigError(f"finetune trainable={self.trainable!r} is unknown: pass all, heads or last:N "
                              "(the last N blocks, e.g. last:1)")


@dataclass
class FinetuneRecord:
    """One validation point: the step, the mean training loss since the previous one, the validation loss."""

    step: int
    train_loss: float
    validation_loss: float


@dataclass
class FinetuneResult:
    """What ``finetune`` returns: the model, how the validation loss went, the sizes of the two parts."""

    trained: TrainedPFN
    """The fine-tuned PFN (CPU, eval mode, best weights), with the parent's metadata."""
    history: list[FinetuneRecord]
    initial_validation_loss: float
    """The validation loss of the parent's weights."""
    best_step: int
    """The step whose weights ``trained`` holds (0: none improved on the parent)."""
    stopped_early: bool
    num_finetune_rows: int
    num_validation_rows: int

    @property
    def best_validation_loss(self) -> float:
        return min([self.initial_validation_loss, *(r.validation_loss for r in self.history)])


def finetune_config(config: FinetuneConfig | None, fields: Mapping[str, Any]) -> FinetuneConfig:
    """``config`` with ``fields`` replaced (a misspelt field is refused with the known names)."""
    known = [f.name for f in dataclasses.fields(FinetuneConfig)]
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise ConfigError(f"unknown fine-tuning option(s) {', '.join(unknown)}: choose from {', '.join(known)}")
    return dataclasses.replace(config or FinetuneConfig(), **fields)


def trainable_parameters(model: nn.Module, trainable: str) -> list[nn.Parameter]:
    """The parameters ``trainable`` (``all``, ``heads``, ``last:N``) names."""
    if trainable == "all":
        return list(model.parameters())
    modules = [head for head in (model.classification_head, model.regression_head) if head is not None]
    if trainable.startswith("last:"):
        num_blocks, layers = int(trainable.removeprefix("last:")), getattr(model, "layers", None)
        num_layers = len(layers) if isinstance(layers, nn.ModuleList) else 0
        if num_blocks > num_layers:
            raise ConfigError(f"trainable={trainable!r}, but this {model.name} model has {num_layers} blocks "
                              f"(model.layers): pass {f'last:1 to last:{num_layers}, ' if num_layers else ''}heads "
                              "or all")
        norm = getattr(model, "norm", None)
        modules = [*layers[len(layers) - num_blocks:], *([norm] if isinstance(norm, nn.Module) else []), *modules]
    return [parameter for module in modules for parameter in module.parameters()]


def finetune(trained: TrainedPFN, X: Any, y: Any, config: FinetuneConfig, *, task: str,
             estimator_params: Mapping[str, Any] | None = None) -> FinetuneResult:
    """Fine-tune a copy of ``trained`` on (X, y) as ``config`` says (``trained`` itself is left as it is).
    ``estimator_params``: the estimator's constructor parameters the table is preprocessed with (e.g.
    ``categorical_features``) and its ``device``, where the steps run."""
    if not trained.supports(task):
        raise InputError(f"the model is a {trained.task} model and cannot be fine-tuned for {task}")
    params = {k: v for k, v in (estimator_params or {}).items() if k not in ("model", "n_estimators", "random_state")}
    device = _device(params.pop("device", "cpu"))
    data_seed, step_seed = (int(s.generate_state(1)[0]) for s in np.random.SeedSequence(config.seed).spawn(2))
    data = prepare(trained, X, y, task=task, validation_fraction=config.validation_fraction,
                   num_views=config.num_views, seed=data_seed, estimator_params=params).to(device)
    model = copy.deepcopy(trained.model).to(device)
    chosen = trainable_parameters(model, config.trainable)
    model.requires_grad_(False)
    for parameter in chosen:
        parameter.requires_grad_(True)
    optimizer = torch.optim.AdamW(chosen, lr=config.learning_rate, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(step_seed)
    history: list[FinetuneRecord] = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)  # dropout, if the model has any
        initial = best = validation_loss(model, data)
        best_state, best_step, waited, losses = _snapshot(model), 0, 0, []
        for step in range(1, config.max_steps + 1):
            model.train()
            x_BRF, y_BR, num_context = sample_splits(generator, data, config.batch_datasets, config.query_fraction)
            loss = -model.test_log_likelihood(x_BRF, y_BR, num_context, data.num_classes_of(len(x_BRF))).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(chosen, config.max_grad_norm)
            optimizer.step()
            losses.append(loss.detach())
            if step % config.eval_every and step != config.max_steps:
                continue
            current = validation_loss(model, data)
            history.append(FinetuneRecord(step=step, train_loss=float(torch.stack(losses).mean()),
                                          validation_loss=current))
            losses = []
            if current < best:
                best, best_state, best_step, waited = current, _snapshot(model), step, 0
            else:
                waited += 1
                if waited >= config.patience:
                    break
    model.load_state_dict(best_state)
    model.requires_grad_(True)
    stopped_early = bool(history) and history[-1].step < config.max_steps
    return FinetuneResult(trained=TrainedPFN(model=model.cpu().eval(), metadata=copy.deepcopy(trained.metadata)),
                          history=history, initial_validation_loss=initial, best_step=best_step,
                          stopped_early=stopped_early, num_finetune_rows=data.x_VNF.shape[1],
                          num_validation_rows=data.x_VPF.shape[1])


def _device(name: Any) -> torch.device:
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise InputError(f"device={name!r} is not a torch device: use 'cpu', 'cuda' or 'cuda:N'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device={name!r}, but no CUDA device is available here: use device='cpu'")
    return device


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}
