"""The ``pfnforge`` command as scripts and clusters call it: a real subprocess, stable flags."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from pfnforge.arrow import from_arrow, read_ipc
from pfnforge.cli import main


def _pfnforge(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pfnforge.cli", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_list_shows_gp_from_the_priors_distribution_and_the_example_plugin(cli_env):
    result = _pfnforge(cli_env, "priors", "list")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert rows["gp"][1:3] == ["regression", "pfnforge-priors"]
    assert rows["sine"][1:3] == ["regression", "pfnforge-example-sine"]
    assert {"gp", "bnn", "arch", "scm", "mixture"} <= set(rows)
    # priors whose config picks the task show the default one
    assert rows["scm"][1:4] == ["classification", "(configurable)", "pfnforge-priors"]
    assert rows["bnn"][1:3] == ["regression", "(configurable)"]


def test_show_prints_defaults_and_field_docs(cli_env):
    result = _pfnforge(cli_env, "priors", "show", "gp")
    assert result.returncode == 0, result.stderr
    assert "# Lengthscale of each kernel term (> 0)." in result.stdout
    assert re.search(r"lengthscale:\n  low: 0\.1\n  high: 1\.0\n  scale: log", result.stdout)


def test_sample_writes_the_requested_shape_and_is_reproducible(cli_env, tmp_path):
    args = ["priors", "sample", "gp", "lengthscale.low=0.3", "--datasets", "5", "--rows", "12",
            "--features", "2", "--train-rows", "4", "--seed", "11"]
    first = _pfnforge(cli_env, *args, "--out", str(tmp_path / "a.arrow"))
    second = _pfnforge(cli_env, *args, "--out", str(tmp_path / "b.arrow"))
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    [record_batch] = read_ipc(tmp_path / "a.arrow")
    batch = from_arrow(record_batch)
    assert batch.x.shape == (5, 12, 2) and np.all(batch.num_train_rows == 4)
    assert np.all(batch.hyperparameters["lengthscale_0"] >= 0.3)
    assert (tmp_path / "a.arrow").read_bytes() == (tmp_path / "b.arrow").read_bytes()
    other = _pfnforge(cli_env, *args[:-1], "12", "--out", str(tmp_path / "c.arrow"))
    assert other.returncode == 0 and (tmp_path / "c.arrow").read_bytes() != (tmp_path / "a.arrow").read_bytes()


def test_bench_ends_with_datasets_per_second(cli_env):
    result = _pfnforge(cli_env, "priors", "bench", "sine", "--datasets", "8", "--rows", "20", "--features", "2",
                       "--workers", "2", "--repeats", "2")
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"datasets/s: (\d+(\.\d+)?)", last)
    assert match and float(match.group(1)) > 0


def test_preview_writes_a_png(cli_env, tmp_path):
    out = tmp_path / "gp.png"
    result = _pfnforge(cli_env, "priors", "preview", "gp", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert str(out) in result.stdout


def test_bad_input_exits_2_with_a_message_not_a_traceback(cli_env, tmp_path):
    out = str(tmp_path / "x.arrow")
    cases = {
        ("priors", "sample", "gp", "lenghtscale.low=1", "--out", out): "Did you mean 'lengthscale'?",
        ("priors", "sample", "nope", "--out", out): "Installed priors:",
        ("priors", "sample", "gp", "--rows", "0", "--out", out): "--rows: 0 is out of range",
        ("priors", "sample", "gp", "--rows", "5", "--train-rows", "9", "--out", out): "more train rows than rows",
    }
    for args, fragment in cases.items():
        result = _pfnforge(cli_env, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert fragment in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["priors", "bench", "gp", "--workers", "0"], "--workers: 0 is out of range: it must be >= 1"),
    (["serve", "gp", "--port", "99999"], "--port: 99999 is not a port"),
    (["serve", "gp", "--workers", "-1"], "--workers: -1 is out of range"),
    (["generate", "gp", "--num-batches", "0", "--out", "x"], "--num-batches: 0 is out of range"),
    (["priors", "sample", "gp", "--datasets", "1000000000", "--out", "x.arrow"], "GiB batch, above the 4 GiB"),
    (["train", "seed=-1", "debug=fast"], "seed=-1 is out of range"),
    (["train", "trainer.strategy=nonsense", "debug=fast"], "trainer.strategy='nonsense' is unknown"),
])
def test_bad_command_line_values_exit_2_with_a_message(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse's own refusal
        code = exit_.code
    assert code == 2 and message in capsys.readouterr().err
