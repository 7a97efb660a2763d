"""``pfnforge generate`` (shards on disk) and ``pfnforge serve`` (an Arrow Flight prior server)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from omegaconf import OmegaConf

from pfnforge import registry
from pfnforge.cli import at_least, port
from pfnforge.config import compose_prior_config
from pfnforge.errors import ConfigError
from pfnforge.hyperpriors import IntRange, Range
from pfnforge.stream.provenance import VALIDATION_RANK, stream_fingerprint
from pfnforge.stream.spec import StreamConfig


def _range_parser(kind: type, number: type):
    """An argparse type for ``N`` or ``LOW-HIGH`` that builds a ``kind`` (IntRange or Range)."""

    def parse(text: str):
        low, _, high = text.partition("-")
        try:
            return kind(low=number(low), high=number(high or low))
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"expected N or LOW-HIGH, got {text!r}: {error}") from error

    return parse


def _part(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    try:
        part = int(index), int(count)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected I/N (slice I of N, 0 <= I < N), got {text!r}") from error
    if not 0 <= part[0] < part[1]:
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N, got {text!r}")
    return part


_int_range = _range_parser(IntRange, int)
_fraction_range = _range_parser(Range, float)


def add_parsers(commands: argparse._SubParsersAction) -> None:
    generate = commands.add_parser(
        "generate", help="write a prior stream to Arrow shards with a manifest (by default the validation rank's)")
    _prior_arguments(generate)
    _stream_arguments(generate)
    generate.add_argument("--num-batches", type=at_least(1), required=True, help="batches to write")
    generate.add_argument("--out", type=Path, required=True, help="shard directory (resumes if it exists)")
    generate.add_argument("--rank", type=at_least(0), default=VALIDATION_RANK,
                          help=f"rank whose stream to write (default {VALIDATION_RANK}: the reserved validation rank, "
                               "which no training rank reads, so the shards are a validation set, data.val_shards, "
                               "even with the training --seed; 0..N-1: a training rank's batches, for exact replay)")
    generate.add_argument("--part", type=_part, default=None, metavar="I/N",
                          help="write only slice I of N (parallel writers, e.g. a Slurm array); then run the same "
                               "command without --part to verify the slices and write the manifest")
    generate.add_argument("--workers", type=at_least(1), default=None, help="worker processes (default: free cores)")
    generate.set_defaults(run=run_generate)

    serve = commands.add_parser("serve", help="serve a prior's batches over Arrow Flight")
    _prior_arguments(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    serve.add_argument("--port", type=port, default=8815, help="port to bind (0: any free port)")
    serve.add_argument("--token-file", type=Path, default=None, help="require this shared token from clients")
    serve.add_argument("--workers", type=at_least(1), default=None, help="worker processes (default: free cores)")
    serve.add_argument("--address-file", type=Path, default=None,
                       help="once listening, append grpc://host:port to this file (trainers' data.servers_file)")
    serve.add_argument("--advertise-host", default=None,
                       help="host name written to --address-file (default: --host, or this host's name for 0.0.0.0)")
    serve.set_defaults(run=run_serve)


def _prior_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="prior name or preset (see `pfnforge priors list`)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the prior config (Hydra syntax)")


def _stream_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=at_least(0), default=0, help="run seed")
    parser.add_argument("--datasets", type=at_least(1), default=64, help="datasets per batch")
    parser.add_argument("--rows", type=_int_range, default=IntRange(low=100, high=100), help="N or LOW-HIGH")
    parser.add_argument("--features", type=_int_range, default=IntRange(low=5, high=5), help="N or LOW-HIGH")
    parser.add_argument("--train-fraction", type=_fraction_range, default=Range(low=0.1, high=0.9),
                        help="fraction of rows before the split, F or LOW-HIGH")


def run_generate(args: argparse.Namespace) -> int:
    from pfnforge.stream.shards import write_shards

    config = compose_prior_config(args.name, args.overrides)
    prior = registry.build_prior(config)
    stream = StreamConfig(seed=args.seed, num_datasets=args.datasets, num_rows=args.rows,
                          num_features=args.features, train_fraction=args.train_fraction)
    prior_config = OmegaConf.to_container(OmegaConf.structured(config), enum_to_str=True)
    out = write_shards(prior, prior_config, stream, args.out, args.num_batches, rank=args.rank,
                       num_workers=args.workers, part=args.part)
    what = f"part {args.part[0]}/{args.part[1]} of {args.num_batches}" if args.part else str(args.num_batches)
    role = "the validation rank" if args.rank == VALIDATION_RANK else "a training rank"
    fingerprint = stream_fingerprint(prior, seed=args.seed, ranks=range(args.rank, args.rank + 1))
    print(f"wrote {what} batches to {out.resolve()}: {fingerprint.describe()} ({role})")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from pfnforge.stream.flight import PriorServer

    token = None
    if args.token_file is not None:
        try:
            token = args.token_file.read_text().strip()
        except OSError as error:
            raise ConfigError(f"cannot read --token-file {args.token_file}: {error}") from error
        if not token:
            raise ConfigError(f"--token-file {args.token_file} is empty: put a shared secret in it")
        if args.token_file.stat().st_mode & 0o077:
            print(f"pfnforge serve: warning: --token-file {args.token_file} can be read by other users: "
                  f"chmod 600 {args.token_file}", file=sys.stderr)
    prior = registry.build_prior(compose_prior_config(args.name, args.overrides))
    server = PriorServer(prior, host=args.host, port=args.port, token=token, num_workers=args.workers)
    signal.signal(signal.SIGTERM, lambda *_: server.shutdown())
    auth = "token required" if token else "no token"
    print(f"serving prior {prior.name} at {server.location} ({server.pool.num_workers} workers, {auth})",
          flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host}, reachable beyond this machine", file=sys.stderr)
    if args.address_file is not None:
        from pfnforge.stream.discovery import advertised_location, publish_location

        publish_location(args.address_file, advertised_location(args.host, server.port, args.advertise_host))
    try:
        server.serve()
    except KeyboardInterrupt:
        server.shutdown()
    if server.failure:
        print(f"pfnforge serve: stopped: {server.failure}", file=sys.stderr)
        return 1
    return 0
