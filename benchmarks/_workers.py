"""What the prior benchmarks share: timing draws in a worker process once all workers are warm, and starting
N simultaneous worker processes (one thread each) and summing their datasets per wall and per CPU second."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import tempfile
import time


def time_draws(draw, repeats: int, barrier: str, *, warmups: int = 2, block_seconds: float = 0.0) -> list[list[float]]:
    """[wall seconds, CPU seconds] per draw, ``repeats`` times. ``barrier`` is ``DIR:N``: after the warm-up draws,
    wait until N workers are warm (a file each in DIR), so that they are timed side by side. ``block_seconds``:
    time blocks of draws lasting at least that long (fast draws), reporting the per-draw mean of each block."""
    for _ in range(warmups):
        draw()
    folder, count = barrier.rsplit(":", 1)
    with open(os.path.join(folder, str(os.getpid())), "w"):
        pass
    while len(os.listdir(folder)) < int(count):
        time.sleep(0.001)
    per_block = 1
    if block_seconds > 0:
        start = time.perf_counter()
        draw()
        per_block = max(1, math.ceil(block_seconds / max(time.perf_counter() - start, 1e-6)))
    times = []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(per_block):
            draw()
        times.append([(time.perf_counter() - start) / per_block, (time.process_time() - cpu) / per_block])
    return times


def run_workers(args: list[str], processes: int, datasets_per_draw: int, label: str) -> tuple[float, float]:
    """Start ``processes`` copies of ``args`` (a worker command, to which ``DIR:N`` is appended as its barrier)
    with one thread each; each prints its ``time_draws`` as JSON on its last line. Datasets per wall second
    and per CPU second, each summed over the workers."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as folder:
        command = [*args, f"{folder}:{processes}"]
        workers = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
        outputs = [(worker.communicate()[0], worker.returncode) for worker in workers]
    wall, cpu = 0.0, 0.0
    for out, returncode in outputs:
        if returncode != 0:
            raise SystemExit(f"{label} worker failed (exit {returncode})")
        times = json.loads(out.strip().splitlines()[-1])
        wall += datasets_per_draw / statistics.median(t[0] for t in times)
        cpu += datasets_per_draw / statistics.median(t[1] for t in times)
    return wall, cpu
