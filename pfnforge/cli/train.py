"""``pfnforge train [overrides]``: Hydra overrides over ``configs/train.yaml``; ``--multirun`` sweeps them."""

from __future__ import annotations

import argparse
import sys

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, open_dict

from pfnforge.config import config_dir, register_configs, unknown_override_error
from pfnforge.errors import ConfigError


def add_parser(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train a PFN (Hydra overrides: prior=gp model=small ...)")
    train.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. trainer.max_steps=500 model=small")
    train.add_argument("-m", "--multirun", action="store_true",
                       help="sweep: one run per combination of comma-separated values (model=tiny,small "
                            "seed=0,1), through Hydra's launcher (hydra/launcher=submitit_slurm for Slurm)")
    train.set_defaults(run=run_train)


def compose_train_config(overrides: list[str]) -> DictConfig:
    register_configs()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        try:
            return compose(config_name="train", overrides=list(overrides))
        except HydraException as error:
            def without(path: str) -> DictConfig:
                kept = [o for o in overrides if o.lstrip("+~").split("=", 1)[0] != path]
                return compose(config_name="train", overrides=kept)

            raise (unknown_override_error(str(error), without) or ConfigError(str(error))) from error


def run_train(args: argparse.Namespace) -> int:
    from pfnforge.train.run import run_training

    if args.multirun:
        return run_sweep(args.overrides)
    cfg = compose_train_config(args.overrides)
    try:
        output_dir = run_training(cfg)
    except KeyboardInterrupt:
        print(f"pfnforge: interrupted; the checkpoints are in {cfg.paths.output_dir}/checkpoints and the same "
              "command resumes from the last of them", file=sys.stderr)
        return 130
    print(f"trained; checkpoints in {output_dir / 'checkpoints'}; see the run with `mlflow ui "
          "--backend-store-uri sqlite:///mlflow.db`")
    return 0


def run_sweep(overrides: list[str]) -> int:
    """Hand the sweep to Hydra's own entry point, so launchers (basic, submitit local/Slurm) work as usual.

    Job *n* trains in ``multirun/<run_name>/<n>`` under the MLflow run name ``<run_name>-<n>``: jobs never
    resume each other's checkpoints, and the same sweep command again resumes every job."""
    import hydra
    from hydra.core.hydra_config import HydraConfig

    from pfnforge.train.run import run_training

    register_configs()

    @hydra.main(config_path=str(config_dir()), config_name="train", version_base="1.3")
    def job(cfg: DictConfig) -> None:
        runtime = HydraConfig.get()
        with open_dict(cfg):
            cfg.paths.output_dir = runtime.runtime.output_dir
            cfg.run_name = f"{cfg.run_name}-{runtime.job.num}"
        run_training(cfg)

    argv = sys.argv
    sys.argv = ["pfnforge-train", "--multirun", *overrides]
    try:
        job()
    finally:
        sys.argv = argv
    return 0
