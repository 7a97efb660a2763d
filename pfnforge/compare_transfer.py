"""``pfnforge priors compare --transfer STEPS``: how well a PFN trained on one prior does on the others and on
real tables.

For each prior: a tiny PFN (``model=tiny``) trained for STEPS steps on that prior alone, at the comparison's
batch shape (its datasets, rows and features, a random train/test split per dataset), through ``pfnforge
train`` (so each training is an ordinary run: MLflow-tracked, resumable, in ``OUT/transfer/<prior>``; the
same command again reuses finished runs). Then every model scores held-out batches of every prior of its task
and of the real tables (``--real``): the mean negative log-likelihood of the test rows (cross-entropy for
classification; for regression, the NLL of the targets standardised by each dataset's training rows, so that
tables in any units weigh alike; lower is better).
The diagonal is in-prior; a prior whose model does well on the other priors' columns and on the real column
transfers.

Shapes: B datasets, R rows (T training rows), F features.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pfnforge.prior import BatchShape, Prior


@dataclass(kw_only=True)
class TransferConfig:
    """What ``--transfer`` trains and how it scores."""

    steps: int
    """Training steps per prior (>= 1)."""
    shape: BatchShape
    """The comparison's batch shape: training batches and scored batches alike."""
    num_batches: int = 4
    """Held-out batches scored per (model, prior) pair."""
    seed: int = 0
    """Training seed; the scored batches come from a stream no training reads."""
    out: Path = Path("priors-compare")
    """The trained runs go to ``out/transfer/<prior>``."""
    tracking_uri: str = "sqlite:///mlflow.db"
    """Where the training runs are tracked."""


def train_on(name: str, config: TransferConfig):
    """Train a tiny PFN on prior (or preset) ``name``; returns it loaded for inference."""
    from pfnforge.cli.train import compose_train_config
    from pfnforge.inference.loading import load_model
    from pfnforge.train.run import run_training

    shape = config.shape
    directory = config.out / "transfer" / name.replace(":", "-")
    overrides = [
        f"prior={name}", "model=tiny", f"model.max_features={shape.num_features}", f"run_name=transfer-{name}",
        f"seed={config.seed}", f"paths.output_dir={directory}", f"logger.tracking_uri={config.tracking_uri}",
        "logger.experiment=pfnforge-priors", f"trainer.max_steps={config.steps}",
        f"trainer.val_check_interval={config.steps}", f"trainer.checkpoint_every_n_steps={config.steps}",
        f"data.stream.num_datasets={shape.num_datasets}",
        f"data.stream.num_rows.low={shape.num_rows}", f"data.stream.num_rows.high={shape.num_rows}",
        f"data.stream.num_features.low={shape.num_features}", f"data.stream.num_features.high={shape.num_features}",
        "data.num_val_batches=1", "trainer.enable_progress_bar=false"]
    run_training(compose_train_config(overrides))
    return load_model(directory / "checkpoints" / "last.ckpt")


def _mean_nll(trained, batches: list) -> float:
    """Mean test NLL over the datasets of ``batches`` whose task the model has a head for (NaN: none)."""
    from pfnforge.evaluation.prior_scores import pfn_scores

    heads = {"classification", "regression"} if trained.task == "mixed" else {trained.task}
    values = []
    for batch in batches:
        num_classes = np.broadcast_to(batch.num_classes, (batch.num_datasets,))
        T = int(np.broadcast_to(batch.num_train_rows, (batch.num_datasets,))[0])
        for task, rows in (("classification", (num_classes > 0) & (num_classes <= trained.model.config.max_classes)),
                           ("regression", num_classes == 0)):
            if task not in heads or not rows.any():
                continue
            y = batch.y[rows]
            if task == "regression":  # every dataset in the units of its training rows' spread
                mean, std = y[:, :T].mean(1, keepdims=True), y[:, :T].std(1, keepdims=True)
                y = ((y - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)
            values.append(pfn_scores(trained, batch.x[rows], y, T, num_classes[rows])["nll"].mean(axis=1))
    return float(np.concatenate(values).mean()) if values else float("nan")


def transfer_matrix(priors: dict[str, Prior], real: dict[str, Prior], config: TransferConfig,
                    progress=print) -> pd.DataFrame:
    """Rows: the prior each model was trained on; columns: what it was scored on (every prior, then
    ``real:<task>``); NaN where the model has no head for the column's task."""
    if config.steps < 1:
        from pfnforge.errors import ConfigError

        raise ConfigError(f"--transfer {config.steps}: the steps per prior must be >= 1")
    targets = {**priors, **{f"real:{task}": prior for task, prior in real.items()}}
    # one held-out stream per target, from seeds no training stream uses (training draws from config.seed)
    seeds = np.random.SeedSequence([config.seed, 0x7E57]).spawn(len(targets) * config.num_batches)
    scored_shape = BatchShape(num_datasets=config.shape.num_datasets, num_rows=config.shape.num_rows,
                              num_features=config.shape.num_features, num_train_rows=config.shape.num_rows // 2)
    held_out = {name: [prior.sample(np.random.default_rng(seeds[i * config.num_batches + k]), scored_shape)
                       for k in range(config.num_batches)] for i, (name, prior) in enumerate(targets.items())}
    rows = []
    for name in priors:
        progress(f"transfer: training a tiny PFN on {name} for {config.steps} steps")
        trained = train_on(name, config)
        rows.append({"trained on": name, **{target: _mean_nll(trained, held_out[target]) for target in targets}})
    return pd.DataFrame(rows)


def plot_transfer(matrix: pd.DataFrame, path: Path) -> None:
    """A heatmap of the matrix (NaN blank), values written in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = matrix.drop(columns="trained on").to_numpy(float)
    figure, ax = plt.subplots(figsize=(1.4 * values.shape[1] + 2, 0.6 * values.shape[0] + 1.6))
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis_r", aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.3f}", ha="center", va="center", fontsize=8, color="white")
    ax.set_xticks(range(values.shape[1]), matrix.columns[1:], rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(values.shape[0]), matrix["trained on"], fontsize=8)
    ax.set_xlabel("scored on (mean test NLL, lower is better)")
    ax.set_ylabel("trained on")
    figure.colorbar(image, ax=ax)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
