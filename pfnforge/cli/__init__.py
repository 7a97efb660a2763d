"""The ``pfnforge`` command: parses arguments, runs one subcommand, turns pfnforge errors into clean exits."""

from __future__ import annotations

import argparse
import sys

from pfnforge.errors import PfnforgeError


def build_parser() -> argparse.ArgumentParser:
    from pfnforge.cli import models, predict, priors, stream, train

    parser = argparse.ArgumentParser(prog="pfnforge", description="Pretrain prior-fitted networks.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    priors.add_parser(commands)
    stream.add_parsers(commands)
    train.add_parser(commands)
    predict.add_parser(commands)
    models.add_parsers(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except PfnforgeError as error:
        print(f"pfnforge: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pfnforge: interrupted", file=sys.stderr)
        return 130
