"""DeepSpeed ZeRO 1-3 on 2 CPU processes (gloo) trains the PFN exactly as one process on both batches, and a
ZeRO-2 run killed after a checkpoint resumes from it with the losses of an uninterrupted run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

pytest.importorskip("deepspeed", reason="DeepSpeed is the optional extra pfnforge[deepspeed]")

from pfnforge.inference.artifact import load_checkpoint
from pfnforge.inference.loading import load_model
from pfnforge.train.run import _resume_checkpoint
from tests.deepspeed_worker import STEPS, batch, loss_of, setup_model


def _reference_losses() -> list[float]:
    """One process, the two ranks' batches together: what data-parallel training must reproduce."""
    model, optimizer = setup_model()
    losses = []
    for step in range(STEPS):
        (x0, y0), (x1, y1) = batch(0, step), batch(1, step)
        loss = (loss_of(model, x0, y0) + loss_of(model, x1, y1)) / 2  # DP averages the two ranks' gradients
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(float(loss))
    return losses


def _workers(cli_env, *args: str) -> subprocess.CompletedProcess:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(cli_env, OMP_NUM_THREADS="1", PFNFORGE_TEST_PORT=str(port))
    return subprocess.run([sys.executable, "-m", "tests.deepspeed_worker", *args], env=env, capture_output=True,
                          text=True, timeout=600, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_zero_stage_matches_single_process_training(stage, tmp_path, cli_env):
    out = tmp_path / "losses.json"
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"  # a directory, as Lightning's DeepSpeed strategy names it
    result = _workers(cli_env, str(stage), str(out), str(checkpoint))
    assert result.returncode == 0, result.stderr[-3000:]
    losses = json.loads(out.read_text())
    assert losses == pytest.approx(_reference_losses(), rel=1e-4, abs=1e-5)
    # the resume lookup finds the directory checkpoint and its step; export consolidates its ZeRO shards (the
    # same code Lightning's DeepSpeed strategy on a GPU feeds: its save writes this layout through the engine)
    found, metadata = _resume_checkpoint(checkpoint.parent)
    assert found == checkpoint and metadata["architecture"] == "rowwise"
    trained = load_checkpoint(checkpoint)
    assert load_model(checkpoint.parent.parent / "checkpoints" / "last.ckpt").metadata == trained.metadata
    if stage < 3:
        expected = torch.load(f"{out}.weights.pt", weights_only=True)
        assert trained.model.state_dict().keys() == expected.keys()
        assert all(torch.equal(trained.model.state_dict()[k], v) for k, v in expected.items())


def test_a_killed_zero2_run_resumes_with_the_losses_of_an_uninterrupted_one(tmp_path, cli_env):
    """Both ranks save after step 1 and are SIGKILLed; a new pair of processes loads the shards (weights, ZeRO-2
    optimiser partitions, step) and trains steps 2..3. Lightning's strategy on a GPU drives the same engine
    save/load; benchmarks/gpu_check.sh runs it through Lightning."""
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    killed = _workers(cli_env, "2", str(tmp_path / "killed.json"), str(checkpoint), "--killed-after", "1")
    assert killed.returncode != 0 and not (tmp_path / "killed.json").exists()  # died before reporting losses
    assert _resume_checkpoint(checkpoint.parent)[0] == checkpoint
    resumed = _workers(cli_env, "2", str(tmp_path / "resumed.json"), str(checkpoint), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((tmp_path / "resumed.json").read_text()) == pytest.approx(
        _reference_losses()[1:], rel=1e-4, abs=1e-5)
