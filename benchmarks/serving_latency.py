"""What serving a registered PFN costs over calling the estimator in-process.

For frames of T training rows + Q query rows x F features, the median wall time of
- `estimator`: `PFNClassifier(trained).fit(X, y).predict_proba(X_query)` in this process (the baseline);
- `pyfunc`: `mlflow.pyfunc.load_model("models:/NAME@champion").predict(frame)` (model loaded once);
- `http`: `POST /invocations` (`dataframe_split` JSON) to `mlflow models serve --env-manager local` on loopback;
plus the one-off costs: registering, downloading and loading a version, and the server's start-up.
The model is the bundled default classifier, registered into a fresh embedded store.

Run: python benchmarks/serving_latency.py --repeats 20 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

from pfnforge.inference.artifact import save_model_dir
from pfnforge.inference.estimators import PFNClassifier
from pfnforge.inference.loading import load_model
from pfnforge.inference.pyfunc import SPLIT_COLUMN

SHAPES = [(100, 10, 4), (400, 200, 10)]


def _frame(num_train: int, num_query: int, num_features: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((num_train + num_query, num_features))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(num_features)])
    frame["target"] = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    frame[SPLIT_COLUMN] = ["train"] * num_train + ["query"] * num_query
    return frame


def _interleaved_medians_ms(calls: list, repeats: int) -> list[float]:
    """Median time of each call, measured round-robin (so that load from other work hits all alike)."""
    for call in calls:
        call()  # warm-up
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(repeats):
        for call, spent in zip(calls, times, strict=True):
            start = time.perf_counter()
            call()
            spent.append(time.perf_counter() - start)
    return [1000 * statistics.median(spent) for spent in times]


def _post(url: str, body: bytes) -> None:
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.status == 200


def _serve(uri: str, env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen, str, float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", uri, "--env-manager",
                                "local", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                               env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                if response.status == 200:
                    return process, url, time.perf_counter() - start
        except OSError:
            if process.poll() is not None or time.perf_counter() - start > 180:
                raise RuntimeError("mlflow models serve did not start") from None
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, in this process and the server")
    args = parser.parse_args()
    import mlflow
    import torch

    torch.set_num_threads(args.threads)

    from pfnforge.inference.mlflow_models import download_model
    from pfnforge.inference.register import register_model

    root = Path(tempfile.mkdtemp(prefix="pfnforge-serving-bench-"))
    uri = f"sqlite:///{root / 'mlflow.db'}"
    os.environ.update(MLFLOW_TRACKING_URI=uri, PFNFORGE_CACHE_DIR=str(root / "cache"),
                      OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    trained = load_model(None, task="classification")
    model_dir = save_model_dir(trained, root / "model")
    start = time.perf_counter()
    register_model(model_dir, "bench", alias="champion", tracking_uri=uri)
    register_s = time.perf_counter() - start
    start = time.perf_counter()
    download_model("models:/bench@champion", tracking_uri=uri)
    pyfunc = mlflow.pyfunc.load_model("models:/bench@champion")
    load_s = time.perf_counter() - start
    process, url, startup_s = _serve("models:/bench@champion", dict(os.environ), root)
    try:
        rows = []
        for num_train, num_query, num_features in SHAPES:
            frame = _frame(num_train, num_query, num_features)
            train = frame[SPLIT_COLUMN] == "train"
            x = frame.drop(columns=["target", SPLIT_COLUMN])
            body = json.dumps({"dataframe_split": frame.to_dict(orient="split", index=False)}).encode()
            estimator, local, http = _interleaved_medians_ms([
                lambda x=x, train=train, frame=frame: PFNClassifier(trained).fit(
                    x[train], frame.target[train]).predict_proba(x[~train]),
                lambda frame=frame: pyfunc.predict(frame),
                lambda body=body: _post(url, body)], args.repeats)
            rows.append((f"{num_train}+{num_query}x{num_features}", estimator, local, http))
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    print(f"one-off: register {register_s:.2f} s (fresh store), download + load {load_s:.2f} s, "
          f"server start-up {startup_s:.1f} s; medians of {args.repeats} interleaved calls, "
          f"{args.threads} torch thread(s)")
    print("| frame T+Q x F | estimator ms | pyfunc ms | http ms | pyfunc / estimator | http / estimator |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for shape, estimator, local, http in rows:
        print(f"| {shape} | {estimator:.1f} | {local:.1f} | {http:.1f} | {local / estimator:.2f} | "
              f"{http / estimator:.2f} |")


if __name__ == "__main__":
    main()
