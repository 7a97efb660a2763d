"""Training step of ``cellwise`` vs TabPFN v2's own architecture code and of ``colrow`` vs TabICL's model code at
matched sizes and batch shapes; with ``--memory``, peak memory of our three architectures per table size.

The anchors run in their own virtual environment (benchmark-only; never dependencies of pfnforge), built randomly
initialised from their classes: no weights exist or are downloaded (workers run with ``HF_HUB_OFFLINE=1``):

    python3 -m venv /tmp/anchors2-venv && /tmp/anchors2-venv/bin/pip install torch==2.13.0
    /tmp/anchors2-venv/bin/pip install tabpfn tabicl
    python benchmarks/architectures_vs_anchors.py --anchor-python /tmp/anchors2-venv/bin/python [--repeats 3]
    python benchmarks/architectures_vs_anchors.py --memory [--limit-s 60]

Every measurement is a fresh subprocess (this script re-run in worker mode: ours with this interpreter, the
anchors' with ``--anchor-python``), ``OMP_NUM_THREADS`` and ``torch.set_num_threads`` both ``--threads`` (2).
A step is forward + backward + AdamW (lr 1e-4) on a classification batch (2 classes, standard-normal features,
split at R/2), the loss the mean NLL of the test rows over the first 2 of 10 logits; the figure is the median
wall time of ``--repeats`` steps after two warm-up steps (and the median CPU time of the process per step).
``--extra-sides`` are measured on the first shape only.

Matched sizes (every side a 10-class head):

- ``cellwise`` = ``cellwise_small`` (E 64, 4 layers, 4 heads) with ``mlp_ratio=4`` vs ``tabpfn v2`` =
  ``tabpfn.architectures.tabpfn_v2.get_architecture(TabPFNV2Config(emsize=64, nlayers=4, nhead=4,
  features_per_group=1, max_num_classes=10))``: a token per cell plus a target column; per layer attention across
  a row's cells, across a column's rows onto the training rows, then an MLP of 4E (TabPFN's width is fixed at 4E,
  hence our ``mlp_ratio=4``). Left different: TabPFN v2 is post-norm (LayerNorm without affine), has no biases in
  attention and MLPs, lets test rows attend with one key/value head (multi-query), decodes with an MLP
  (E → 4E → 10) and preprocesses inside ``forward`` (constant-feature removal, NaN indicators, scaling, label
  densification in a loop over datasets). ``tabpfn v2 fpg2``: the same with ``features_per_group=2`` (v2's
  default: two features per token, half the feature tokens).
- ``colrow`` = ``colrow_small`` (cell width 32, 16 inducing points, 1 set-transformer layer, 2 row layers, 4 CLS
  tokens, 4 in-context layers of width 128, 4 heads, MLPs 2×) vs ``tabicl`` = ``tabicl._model.tabicl.TabICL(
  embed_dim=32, col_num_blocks=1, col_nhead=4, col_num_inds=16, row_num_blocks=2, row_nhead=4, row_num_cls=4,
  icl_num_blocks=4, icl_nhead=4, ff_factor=2, max_classes=10)`` with its later additions off
  (``col_feature_group=False, col_target_aware=False, col_ssmax="none", icl_ssmax="none"``). Left different:
  RoPE in its row stage (ours: random column embeddings), and its column stage also embeds the 4 CLS positions
  (F + 4 columns). ``tabicl defaults``: the same sizes with those additions on (features grouped by 3,
  target-aware column embedding, query-aware scalable softmax).

``--memory``: peak RSS of one process (``ru_maxrss``) that builds a small preset (``rowwise_small`` with
``max_features`` = F, ``cellwise_small``, ``colrow_small``), pays one-time costs on a 64-row batch, runs one
inference pass (``forward`` under
``no_grad``, eval mode), reads its peak, then one training step (forward + backward + AdamW) and reads it again,
on 1 dataset of R rows (split at R/2) × F features. Cells are measured small to large; a cell is skipped when
scaling the largest measured cell (time by the architecture's ``training_flops``, memory by cells R·(F + 1), by
rows for ``rowwise``) predicts over ``--limit-s`` or over the memory available at the start less 3 GiB (at most
20 GiB; workers run under that ``RLIMIT_DATA``, so a wrong prediction fails alone). The largest table that fits
in 24 GiB is extrapolated from peak = a + b·R + c·R·F fitted by least squares to every measured cell of an
architecture (at least 3): attention is computed blockwise (no R × T score matrix is kept), so memory grows
linearly in rows, through per-row (b) and per-cell (c) activations.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ANCHORS = {"tabpfn v2": "cellwise", "tabpfn v2 fpg2": "cellwise", "tabicl": "colrow", "tabicl defaults": "colrow"}
"""Each anchor and the side of ours it is compared with."""
OURS = {"cellwise": ["model=cellwise_small", "model.mlp_ratio=4"], "colrow": ["model=colrow_small"],
        "rowwise": ["model=rowwise_small"]}
"""Our sides: their overrides of the model config (``rowwise`` also gets ``max_features`` = F)."""
GiB = 2**30


def _batch(shape: tuple[int, int, int]):
    import numpy as np
    import torch

    B, R, F = shape
    rng = np.random.default_rng(0)
    x_BRF = torch.from_numpy(rng.normal(size=(B, R, F)).astype(np.float32))
    y_BR = torch.from_numpy(rng.integers(0, 2, size=(B, R)).astype(np.float32))
    return x_BRF, y_BR, R // 2


def _ours(side: str, num_features: int):
    """Our model and its loss on a batch (x, y, T)."""
    import torch

    from pfnforge import registry
    from pfnforge.cli.train import compose_train_config
    from pfnforge.config import to_model_config

    overrides = OURS[side] + ([f"model.max_features={num_features}"] if side == "rowwise" else [])
    model = registry.build_model(to_model_config(compose_train_config(overrides).model), None, classification=True)

    def loss(x_BRF, y_BR, T):
        return -model.test_log_likelihood(x_BRF, y_BR, T, torch.full((x_BRF.shape[0],), 2)).mean()
    return model, loss


def _anchor(side: str):
    """The anchor's model and its loss on a batch (x, y, T)."""
    import torch.nn.functional as F

    if side.startswith("tabpfn"):
        from tabpfn.architectures import tabpfn_v2

        config, unused = tabpfn_v2.parse_config({"emsize": 64, "nlayers": 4, "nhead": 4, "max_num_classes": 10,
                                                 "features_per_group": 2 if side.endswith("fpg2") else 1})
        assert not unused
        model = tabpfn_v2.get_architecture(config)

        def loss(x_BRF, y_BR, T):  # TabPFN takes (rows, datasets, features) and returns (test rows, datasets, C)
            logits_QBC = model(x_BRF.transpose(0, 1), y_BR[:, :T].transpose(0, 1))
            return F.cross_entropy(logits_QBC[..., :2].reshape(-1, 2), y_BR[:, T:].T.reshape(-1).long())
        return model, loss
    from tabicl._model.tabicl import TabICL

    extras = {} if side == "tabicl defaults" else {"col_feature_group": False, "col_target_aware": False,
                                                   "col_ssmax": "none", "icl_ssmax": "none"}
    model = TabICL(max_classes=10, embed_dim=32, col_num_blocks=1, col_nhead=4, col_num_inds=16, row_num_blocks=2,
                   row_nhead=4, row_num_cls=4, icl_num_blocks=4, icl_nhead=4, ff_factor=2, **extras)

    def loss(x_BRF, y_BR, T):
        logits_BQC = model(x_BRF, y_BR[:, :T])
        return F.cross_entropy(logits_BQC[..., :2].reshape(-1, 2), y_BR[:, T:].reshape(-1).long())
    return model, loss


def _step_worker(side: str, shape: tuple[int, int, int], repeats: int, threads: int, profile: bool) -> dict:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, loss = _anchor(side) if side in ANCHORS else _ours(side, shape[2])
    model.train()
    x_BRF, y_BR, T = _batch(shape)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        optimiser.zero_grad()
        loss(x_BRF, y_BR, T).backward()
        optimiser.step()

    for _ in range(2):  # the first steps of a process pay one-time costs (allocations, kernel selection)
        step()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    result = {"parameters": sum(p.numel() for p in model.parameters()), "wall_s": statistics.median(wall),
              "cpu_s": statistics.median(cpu)}
    if profile:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            step()
        result["profile"] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)
    return result


def _memory_worker(side: str, shape: tuple[int, int, int], threads: int, limit_bytes: int) -> dict:
    import torch

    resource.setrlimit(resource.RLIMIT_DATA, (limit_bytes, limit_bytes))  # fail alone, never push others out
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, loss = _ours(side, shape[2])
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss(*_batch((1, 64, shape[2]))).backward()  # one-time costs on a tiny batch, before the baseline
    optimiser.zero_grad()
    x_BRF, y_BR, T = _batch(shape)
    peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # noqa: E731  (Linux: KiB)
    result = {"base": peak()}
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        model(x_BRF, y_BR, T, True)
    result.update(infer_s=time.perf_counter() - start, infer=peak())
    model.train()
    start = time.perf_counter()
    optimiser.zero_grad()
    loss(x_BRF, y_BR, T).backward()
    optimiser.step()
    result.update(train_s=time.perf_counter() - start, train=peak())
    return result


def _run(python: str, args: list[str], threads: int, timeout: float) -> dict | None:
    """A worker's JSON answer, or None if it failed or ran past ``timeout`` seconds."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1")
    try:
        done = subprocess.run([python, os.path.abspath(__file__), *args], env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        print(f"worker {args} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.splitlines()[-1])


def _steps(args: argparse.Namespace) -> None:
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    print(f"{args.threads} threads; median of {args.repeats} steps after 2 warm-ups; fresh process per side and shape")
    print("| shape (B×R×F) | ours | parameters | ours s | anchor | parameters | anchor s | ours/anchor | "
          "CPU s ours/anchor |")
    print("| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    profiles = {}
    for shape in shapes:
        measured = {}
        sides = args.sides.split(",") + (args.extra_sides.split(",") if shape == shapes[0] and args.extra_sides else [])
        for side in sides:
            python = args.anchor_python if side in ANCHORS else sys.executable
            profile = args.profile and shape == shapes[0]
            measured[side] = _run(python, ["--worker", side, "x".join(map(str, shape)), str(args.repeats),
                                           str(args.threads), str(int(profile))], args.threads, timeout=900)
            if profile and measured[side] is not None:
                profiles[side] = measured[side].pop("profile")
        for anchor in [s for s in sides if s in ANCHORS]:
            ours, theirs = measured.get(ANCHORS[anchor]), measured[anchor]
            if ours is None or theirs is None:
                print(f"| {'×'.join(map(str, shape))} | {ANCHORS[anchor]} | | | {anchor} | failed | | | |")
                continue
            print(f"| {'×'.join(map(str, shape))} | {ANCHORS[anchor]} | {ours['parameters']:,} | {ours['wall_s']:.3f} "
                  f"| {anchor} | {theirs['parameters']:,} | {theirs['wall_s']:.3f} | "
                  f"**{ours['wall_s'] / theirs['wall_s']:.2f}** | {ours['cpu_s']:.2f}/{theirs['cpu_s']:.2f} |")
    for side, table in profiles.items():
        print(f"\nprofile of one step, {side}, shape {'×'.join(map(str, shapes[0]))}:\n{table}")


def _memory(args: argparse.Namespace) -> None:
    rows_grid = [int(v) for v in args.rows.split(",")]
    features_grid = [int(v) for v in args.features.split(",")]
    with open("/proc/meminfo") as meminfo:
        available = next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:"))
    limit = min(20 * GiB, available - 3 * GiB)
    print(f"{args.threads} threads; 1 dataset, split at R/2; peak RSS of the process (GiB); skip: predicted "
          f"> {args.limit_s:.0f} s or > {limit / GiB:.1f} GiB (available {available / GiB:.1f} GiB less 3)")
    print("| model | rows | features | inference peak GiB | inference s | training peak GiB | training s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    fits = []
    for side in args.memory_sides.split(","):
        models = {F: _ours(side, F)[0] for F in features_grid}
        flops = lambda R, F: models[F].training_flops(1, R, R // 2, F)  # noqa: E731, B023
        size = (lambda R, F: R) if side == "rowwise" else (lambda R, F: R * (F + 1))
        measured: dict[tuple[int, int], dict] = {}
        for F in features_grid:
            for R in rows_grid:
                if measured:
                    (R0, F0), big = max(measured.items(), key=lambda kv: flops(*kv[0]))
                    seconds = big["train_s"] * flops(R, F) / flops(R0, F0)
                    memory = big["base"] + (big["train"] - big["base"]) * size(R, F) / size(R0, F0)
                    if seconds > args.limit_s or memory > limit:
                        print(f"| {side} | {R:,} | {F} | skipped: predicted {seconds:.0f} s, {memory / GiB:.1f} GiB"
                              " | | | |")
                        continue
                result = _run(sys.executable, ["--memory-worker", side, f"1x{R}x{F}", str(args.threads), str(limit)],
                              args.threads, timeout=4 * args.limit_s)
                if result is None:
                    print(f"| {side} | {R:,} | {F} | failed (over {limit / GiB:.1f} GiB?) or over "
                          f"{4 * args.limit_s:.0f} s | | | |")
                    continue
                measured[R, F] = result
                print(f"| {side} | {R:,} | {F} | {result['infer'] / GiB:.2f} | {result['infer_s']:.2f} | "
                      f"{result['train'] / GiB:.2f} | {result['train_s']:.2f} |", flush=True)
        if len(measured) >= 3:
            fits.append((side, len(measured), {kind: fit_peak([(R, F, m[kind]) for (R, F), m in measured.items()])
                                               for kind in ("train", "infer")}))
    print("\nLargest table in 24 GiB: rows R at F features from peak = a + b·R + c·R·F (GiB), least squares over the "
          "measured cells")
    print("| model | cells | kind | a | b per 1,000 rows | c per 1,000 rows × 100 features | largest residual | "
          "F = 10 | F = 100 | F = 500 |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for side, count, by_kind in fits:
        for kind, (a, b, c, residual) in by_kind.items():
            rows = [f"{(24 - a) / (b + c * F):,.0f}" for F in (10, 100, 500)]
            print(f"| {side} | {count} | {kind} | {a:.2f} | {b * 1e3:.3f} | {c * 1e5:.3f} | {residual:.2f} | "
                  f"{' | '.join(rows)} |")


def fit_peak(points: list[tuple[int, int, float]]) -> tuple[float, float, float, float]:
    """a, b, c of peak GiB = a + b·R + c·R·F by least squares over (R, F, peak bytes), a term that comes out
    negative dropped (memory does not shrink with rows), and the largest absolute residual in GiB."""
    import numpy as np

    R, F, peak = (np.array(v, float) for v in zip(*points, strict=True))
    columns = [np.ones_like(R), R, R * F]
    for keep in ([0, 1, 2], [0, 2], [0, 1]):
        coefficients = np.linalg.lstsq(np.stack([columns[i] for i in keep], 1), peak / GiB, rcond=None)[0]
        if (coefficients[1:] >= 0).all():
            break
    a, b, c = (dict(zip(keep, coefficients, strict=True)).get(i, 0.0) for i in range(3))
    return a, b, c, float(np.abs(a + b * R + c * R * F - peak / GiB).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--anchor-python", help="python of a venv with torch, tabpfn and tabicl")
    parser.add_argument("--shapes", default="8x300x20,2x1000x50", help="datasets x rows x features, comma-separated")
    parser.add_argument("--sides", default="cellwise,tabpfn v2,colrow,tabicl")
    parser.add_argument("--extra-sides", default="tabpfn v2 fpg2,tabicl defaults", help="first shape only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="also profile one step of each side (first shape)")
    parser.add_argument("--memory", action="store_true", help="peak memory of our architectures per table size")
    parser.add_argument("--memory-sides", default="rowwise,colrow,cellwise")
    parser.add_argument("--rows", default="1000,2000,4000,10000")
    parser.add_argument("--features", default="10,100,500")
    parser.add_argument("--limit-s", type=float, default=60.0, help="skip memory cells predicted to take longer")
    args = parser.parse_args()
    if args.memory:
        _memory(args)
    elif args.anchor_python is None:
        parser.error("--anchor-python is required (or --memory)")
    else:
        _steps(args)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        side, shape, repeats, threads, profile = sys.argv[2:]
        print(json.dumps(_step_worker(side, tuple(int(v) for v in shape.split("x")), int(repeats), int(threads),
                                      profile == "1")))
    elif len(sys.argv) > 1 and sys.argv[1] == "--memory-worker":
        side, shape, threads, limit = sys.argv[2:]
        print(json.dumps(_memory_worker(side, tuple(int(v) for v in shape.split("x")), int(threads), int(limit))))
    else:
        main()
