"""``pfnforge priors new``, ``check`` and ``api``: write a prior plugin package, run the prior contract on an
installed prior, and write the API reference for prior authors."""

from __future__ import annotations

import argparse
import traceback
from pathlib import Path

from pfnforge import contract, registry


def add_parsers(sub: argparse._SubParsersAction) -> None:
    new = sub.add_parser("new", help="write a plugin package for a new prior (pyproject, typed config, Numba kernel,"
                                     " contract test)")
    new.add_argument("name", help="the prior's name: a Python identifier, e.g. noisy_linear")
    new.add_argument("--dir", type=Path, default=Path(), help="where to write pfnforge-prior-NAME/ (default .)")
    new.set_defaults(run=run_new)
    check = sub.add_parser("check", help="run the prior contract on an installed prior (exit 1 if a check fails)")
    check.add_argument("name", help="an installed prior (see `pfnforge priors list`)")
    check.set_defaults(run=run_check)
    compare = sub.add_parser("compare", help="priors side by side: meta-features of their datasets, distance to "
                                             "real tables (C2ST AUC), diversity")
    compare.add_argument("names", nargs="+", help="priors or presets (see `pfnforge priors list`)")
    compare.add_argument("--real", default="tabular", help="suite whose tables are the real data (default: "
                                                          "tabular; 'none' to skip; needs pfnforge[suites])")
    compare.add_argument("--batches", type=int, default=8, help="batches per prior")
    compare.add_argument("--datasets", type=int, default=32, help="datasets per batch")
    compare.add_argument("--rows", type=int, default=200)
    compare.add_argument("--features", type=int, default=10)
    compare.add_argument("--seed", type=int, default=0)
    compare.add_argument("--out", type=Path, default=Path("priors-compare"), help="tables and plot go here")
    compare.add_argument("--tracking-uri", help="MLflow URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    compare.add_argument("--no-mlflow", action="store_true", help="write files only")
    compare.add_argument("--transfer", type=int, default=0, metavar="STEPS",
                         help="also train a tiny PFN for STEPS steps on each prior and score it on every prior of "
                              "its task and on the real tables (the cross-prior NLL matrix)")
    compare.set_defaults(run=run_compare)
    api = sub.add_parser("api", help="the API reference for prior authors as Markdown (docs/priors/api.md)")
    api.add_argument("--out", type=Path, help="write it here (default: print it)")
    api.set_defaults(run=run_api)


def run_api(args: argparse.Namespace) -> int:
    from pfnforge.apidoc import render

    page = render()
    if args.out is None:
        print(page, end="")
    else:
        args.out.write_text(page)
        print(f"wrote {args.out}")
    return 0


def run_new(args: argparse.Namespace) -> int:
    from pfnforge.scaffold import write_prior_plugin

    target = write_prior_plugin(args.name, args.dir)
    print(f"wrote {target}/")
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        print(f"  {path.relative_to(target)}")
    print(f"next: cd {target} && pip install -e . && pfnforge priors check {args.name}")
    return 0


def _describe(error: BaseException) -> str:
    if isinstance(error, contract.ContractError):
        return str(error)
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" (at {frame.filename}:{frame.lineno})" if frame else ""
    return f"{type(error).__name__}: {error}{where}"


def run_check(args: argparse.Namespace) -> int:
    entry = registry.entry_for(args.name)  # an unknown or clashing name is a usage error (exit 2)
    print(f"checking prior {args.name!r} from {entry.distribution} ({entry.target})")
    results = []
    for result in contract.run_contract(args.name):
        results.append(result)
        print(f"{'PASS' if result.error is None else 'FAIL'}  {result.check.name}  ({result.seconds:.2f} s)",
              flush=True)
        if result.error is not None:
            print("\n".join(f"      {line}" for line in _describe(result.error).splitlines()))
    passed = sum(result.error is None for result in results)
    if len(results) < len(contract.CHECKS):
        print(f"skipped the other {len(contract.CHECKS) - len(results)} checks: the prior does not load")
    print(f"{passed} of {len(contract.CHECKS)} checks passed")
    return 0 if passed == len(contract.CHECKS) else 1


def run_compare(args: argparse.Namespace) -> int:
    from pfnforge.cli.priors_compare import run

    return run(args)
