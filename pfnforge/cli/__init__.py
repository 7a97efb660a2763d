"""The ``pfnforge`` command: parses arguments, runs one subcommand, turns pfnforge errors into clean exits."""

from __future__ import annotations

import argparse
import sys

from pfnforge.errors import PfnforgeError


def at_least(low: int):
    """An argparse type: an integer >= ``low`` (argparse answers a bad value with exit code 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is out of range: it must be >= {low}")
        return value
    return parse


def port(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free port) to 65535."""
    value = at_least(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port: use 0 (any free port) to 65535")
    return value


def build_parser() -> argparse.ArgumentParser:
    from pfnforge.cli import finetune, models, predict, priors, stream, train

    parser = argparse.ArgumentParser(prog="pfnforge", description="Pretrain prior-fitted networks.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    priors.add_parser(commands)
    stream.add_parsers(commands)
    train.add_parser(commands)
    predict.add_parser(commands)
    finetune.add_parser(commands)
    models.add_parsers(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # `evaluate MODEL --prior NAME key=value ...`: overrides after the options are overrides too
        if args.command == "evaluate" and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.run(args) or 0
    except PfnforgeError as error:
        print(f"pfnforge: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pfnforge: interrupted", file=sys.stderr)
        return 130
