"""``pfnforge priors``: list, show, sample, preview, summarise and benchmark the installed priors; ``new`` and
``check`` (write a prior plugin, run the prior contract) live in ``pfnforge.cli.priors_plugin``."""

from __future__ import annotations

import argparse
import ast
import inspect
import itertools
import sys
import textwrap
import time
from dataclasses import fields, is_dataclass
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from pfnforge import registry
from pfnforge.arrow import to_arrow, write_ipc
from pfnforge.cli import at_least, priors_plugin
from pfnforge.config import compose_prior_config
from pfnforge.errors import ConfigError, PluginError
from pfnforge.prior import BatchShape
from pfnforge.stream.spec import MAX_BATCH_BYTES


def add_parser(commands: argparse._SubParsersAction) -> None:
    priors = commands.add_parser("priors", help="list, show, sample, preview, benchmark, write and check priors")
    sub = priors.add_subparsers(dest="priors_command", required=True, metavar="ACTION")
    sub.add_parser("list", help="installed priors with their task and distribution").set_defaults(run=run_list)
    show = sub.add_parser("show", help="a prior's config with defaults and documentation")
    show.add_argument("name")
    show.set_defaults(run=run_show)

    def with_shape(name: str, help_text: str, datasets: int, rows: int, features: int) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("name", help="prior name or preset (see `pfnforge priors list`)")
        p.add_argument("overrides", nargs="*", help="key=value overrides of the prior config (Hydra syntax)")
        p.add_argument("--datasets", type=at_least(1), default=datasets, help="datasets per batch")
        p.add_argument("--rows", type=at_least(1), default=rows, help="rows per dataset")
        p.add_argument("--features", type=at_least(1), default=features, help="features per dataset")
        p.add_argument("--train-rows", type=int, default=None, help="train/test split point (default rows/2)")
        p.add_argument("--seed", type=int, default=0, help="seed of the generator")
        return p

    sample = with_shape("sample", "draw a batch and write it as an Arrow IPC file", 16, 100, 5)
    sample.add_argument("--out", type=Path, required=True, help="output .arrow file")
    sample.set_defaults(run=run_sample)
    preview = with_shape("preview", "plot sample datasets, class balance, missingness and drawn hyperparameters"
                         " to a PNG", 64, 100, 1)
    preview.add_argument("--out", type=Path, default=None, help="output PNG (default <name>-preview.png)")
    preview.add_argument("--show", type=int, default=8, help="sample datasets drawn as scatter plots")
    preview.set_defaults(run=run_preview)
    stats = with_shape("stats", "summary statistics of many draws", 64, 100, 5)
    stats.add_argument("--batches", type=at_least(1), default=10, help="batches to draw")
    stats.set_defaults(run=run_stats)
    bench = with_shape("bench", "datasets/s at a shape and worker count", 64, 100, 5)
    bench.add_argument("--workers", type=at_least(1), default=1, help="worker processes, one core each")
    bench.add_argument("--repeats", type=at_least(1), default=5, help="timed batches per worker")
    bench.add_argument("--warmup", type=at_least(0), default=1, help="untimed batches per worker first")
    bench.set_defaults(run=run_bench)
    priors_plugin.add_parsers(sub)


def run_list(args: argparse.Namespace) -> int:
    rows, status = [], 0
    for name, entries in registry.discover().items():
        try:
            rows.append((name, _default_task(registry.load_prior_class(name)), entries[0].distribution, ""))
        except PluginError as error:
            status = 1
            rows.extend((name, "?", e.distribution, f"error: {error}") for e in entries)
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(("name", "task", "distribution"))]
    print(f"{'name':<{widths[0]}}  {'task':<{widths[1]}}  {'distribution':<{widths[2]}}")
    for name, task, dist, note in rows:
        print(f"{name:<{widths[0]}}  {task:<{widths[1]}}  {dist:<{widths[2]}}  {note}".rstrip())
    return status


def _default_task(cls: type) -> str:
    """The task of the prior under its default config; priors whose config picks it say so."""
    try:
        task = cls().task
    except Exception:  # a config without defaults for every field: the class's own word
        return cls.task.value
    return f"{task.value} (configurable)" if task is not cls.task else task.value


def field_docs(cls: type) -> dict[str, str]:
    """The docstrings written under dataclass fields (``x: int = 1`` followed by ``\"\"\"doc\"\"\"``)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in itertools.pairwise(body):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)):
                docs[node.target.id] = " ".join(str(after.value.value).split())
    return docs


def run_show(args: argparse.Namespace) -> int:
    config = compose_prior_config(args.name)
    cls = registry.load_prior_class(args.name) if args.name in registry.discover() else None
    title = f"{args.name}: {(cls.__doc__ or '').strip().splitlines()[0]}" if cls else args.name
    if cls:
        title += f" [{cls.task.value}; {registry.entry_for(args.name).distribution}]"
    print(f"# {title}")
    docs = field_docs(type(config))
    for f in fields(config):
        value = getattr(config, f.name)
        if docs.get(f.name):
            print("\n".join(f"# {line}" for line in textwrap.wrap(docs[f.name], 100)))
        if is_dataclass(value):
            print(OmegaConf.to_yaml({f.name: OmegaConf.structured(value)}).rstrip())
        else:
            print(OmegaConf.to_yaml({f.name: OmegaConf.create({"v": value}).v}).rstrip())
    return 0


def _prior_and_shape(args: argparse.Namespace):
    size = args.datasets * args.rows * (args.features + 1) * 4
    if size > MAX_BATCH_BYTES:
        raise ConfigError(f"--datasets {args.datasets} x --rows {args.rows} x --features {args.features} is a "
                          f"{size / 2**30:,.0f} GiB batch, above the {MAX_BATCH_BYTES >> 30} GiB these commands "
                          "draw in memory: ask for fewer datasets, or write many batches with `pfnforge generate`")
    config = compose_prior_config(args.name, args.overrides)
    prior = registry.build_prior(config)
    train_rows = args.rows // 2 if args.train_rows is None else args.train_rows
    shape = BatchShape(num_datasets=args.datasets, num_rows=args.rows, num_features=args.features,
                       num_train_rows=train_rows)
    return prior, shape


def run_sample(args: argparse.Namespace) -> int:
    prior, shape = _prior_and_shape(args)
    print(f"sampling {shape.num_datasets} datasets from {prior.name} (seed {args.seed}) ...", file=sys.stderr)
    start = time.perf_counter()
    record_batch = to_arrow(prior.sample(np.random.default_rng(args.seed), shape))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_ipc(args.out, [record_batch])
    print(f"wrote {args.out} ({record_batch.nbytes / 1e6:.1f} MB, {time.perf_counter() - start:.2f} s)")
    return 0


def run_preview(args: argparse.Namespace) -> int:
    from pfnforge.preview import plot_batch

    prior, shape = _prior_and_shape(args)
    print(f"sampling {shape.num_datasets} datasets from {prior.name} for a preview ...", file=sys.stderr)
    batch = prior.sample(np.random.default_rng(args.seed), shape)
    out = args.out or Path(f"{args.name}-preview.png")
    overrides = " ".join(args.overrides)
    plot_batch(batch, out, title=f"{args.name} {overrides}".strip() + f", seed {args.seed}", max_datasets=args.show)
    print(f"wrote {out.resolve()}")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from pfnforge.stats import summarize

    prior, shape = _prior_and_shape(args)
    rng = np.random.default_rng(args.seed)
    print(f"drawing {args.batches} batches of {shape.num_datasets} datasets from {prior.name} ...", file=sys.stderr)
    summary = summarize([prior.sample(rng, shape) for _ in range(args.batches)])
    width = max(len(key) for key in summary)
    for key, value in summary.items():
        print(f"{key:<{width}}  {value:.4g}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from pfnforge.bench import benchmark_prior

    prior, shape = _prior_and_shape(args)
    print(f"benchmarking {prior.name}: {shape.num_datasets} datasets x {shape.num_rows} rows x "
          f"{shape.num_features} features, {args.workers} worker(s), {args.repeats} repeats",
          file=sys.stderr)
    result = benchmark_prior(prior, shape, num_workers=args.workers, repeats=args.repeats,
                             warmup=args.warmup, seed=args.seed)
    print(f"median batch time: {result.median_batch_seconds * 1e3:.2f} ms per worker")
    print(f"rows/s: {result.datasets_per_second * shape.num_rows:.0f}")
    print(f"datasets/s: {result.datasets_per_second:.1f}")
    return 0
