"""``pfnforge train [overrides]``: Hydra overrides over ``configs/train.yaml``."""

from __future__ import annotations

import argparse

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig

from pfnforge.config import config_dir, register_prior_configs
from pfnforge.errors import ConfigError


def add_parser(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train a PFN (Hydra overrides: prior=gp model=small ...)")
    train.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. trainer.max_steps=500 model=small")
    train.set_defaults(run=run_train)


def compose_train_config(overrides: list[str]) -> DictConfig:
    register_prior_configs()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        try:
            return compose(config_name="train", overrides=list(overrides))
        except HydraException as error:
            raise ConfigError(str(error)) from error


def run_train(args: argparse.Namespace) -> int:
    from pfnforge.train.run import run_training

    output_dir = run_training(compose_train_config(args.overrides))
    print(f"trained; checkpoints in {output_dir / 'checkpoints'}; see the run with `mlflow ui "
          "--backend-store-uri sqlite:///mlflow.db`")
    return 0
