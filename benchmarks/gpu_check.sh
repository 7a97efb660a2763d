#!/usr/bin/env bash
# GPU check: a few training steps with each strategy pfnforge configures, plus bf16 throughput of
# model=base. Run on a machine with CUDA: bash benchmarks/gpu_check.sh  (needs `pip install -e '.[deepspeed]'`
# for the DeepSpeed rows). Prints one line per strategy: ok or FAILED, with the last metrics.
set -u
cd "$(dirname "$0")/.." || exit 1
out=$(mktemp -d)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || { echo "no GPU"; exit 1; }
gpus=$(nvidia-smi -L | wc -l)
common=(model=small "data.stream.num_datasets=32" "data.stream.num_rows.low=500" "data.stream.num_rows.high=500"
        trainer.max_steps=30 trainer.val_check_interval=30 trainer.enable_progress_bar=false
        "logger.tracking_uri=sqlite:///$out/mlflow.db")
run() {
  local name=$1; shift
  if timeout 900 pfnforge train "${common[@]}" "paths.output_dir=$out/$name" run_name="$name" "$@" \
      > "$out/$name.log" 2>&1; then echo "ok      $name"; else echo "FAILED  $name (log: $out/$name.log)"; fi
}
run single-bf16 trainer=gpu
run compiled trainer=gpu trainer.compile=true
run fsdp trainer=fsdp
run fsdp2 trainer=fsdp2 trainer.accelerator=gpu trainer.devices=1
for stage in 1 2 3; do run "deepspeed-zero$stage" "trainer=deepspeed_zero$stage"; done
if [ "$gpus" -ge 2 ]; then run ddp trainer=ddp trainer.accelerator=gpu "trainer.devices=$gpus"; fi
# ZeRO-2 through Lightning: stopped at step 20 and resumed to 40 (the same command with more steps), against an
# uninterrupted 40-step run; the loss histories after step 20 are compared below
zero2=(trainer=deepspeed_zero2 trainer.checkpoint_every_n_steps=20 trainer.val_check_interval=20 seed=1
       trainer.log_every_n_steps=1)
run zero2-uninterrupted "${zero2[@]}" trainer.max_steps=40
run zero2-resumed "${zero2[@]}" trainer.max_steps=20
run zero2-resumed "${zero2[@]}" trainer.max_steps=40
python - "$out/mlflow.db" <<'PY'
import sys, mlflow
client = mlflow.MlflowClient(f"sqlite:///{sys.argv[1]}")
runs = {r.info.run_name: r for r in client.search_runs([e.experiment_id for e in client.search_experiments()])
        if r.info.run_name.startswith("zero2-")}
history = {name: {m.step: m.value for m in client.get_metric_history(run.info.run_id, "train/loss")}
           for name, run in runs.items()}
a, b = history.get("zero2-uninterrupted", {}), history.get("zero2-resumed", {})
steps = sorted(s for s in set(a) & set(b) if s > 20)
worst = max((abs(a[s] - b[s]) / max(abs(a[s]), 1e-6) for s in steps), default=float("nan"))
ok = len(steps) >= 15 and worst < 1e-2 and len(runs) == 2  # one MLflow run for the stopped-and-resumed run
print(f"{'ok     ' if ok else 'FAILED '} zero2-resume: {len(steps)} steps after the resume, worst relative loss "
      f"difference {worst:.2e}, {len(runs)} MLflow runs")
PY
run base-throughput trainer=gpu model=base trainer.max_steps=100 trainer.log_every_n_steps=10
# each architecture at the same batch shape: its tokens/s, model TFLOP/s and loss land in the table below
for arch in rowwise cellwise colrow; do
  run "$arch-small" trainer=gpu "model=${arch}_small" prior=scm prior.classification=true \
    "data.stream.num_features.low=20" "data.stream.num_features.high=20" trainer.max_steps=60 trainer.log_every_n_steps=10
done
# step time and estimator predict latency with and without the kept context, per architecture, on the GPU
timeout 900 python benchmarks/architectures.py --device cuda --repeats 5 || echo "FAILED  architectures benchmark"
# the PFN paper's GP setting exactly as configured (model=base, 2,000 rows, 5-D), 60 steps; its own args
if timeout 1800 pfnforge train +experiment=gp_pfn_paper run_name=gp-pfn-paper "paths.output_dir=$out/gp-pfn-paper" \
    trainer.max_steps=60 trainer.val_check_interval=60 trainer.log_every_n_steps=5 trainer.enable_progress_bar=false \
    "logger.tracking_uri=sqlite:///$out/mlflow.db" > "$out/gp-pfn-paper.log" 2>&1; then echo "ok      gp-pfn-paper"
else echo "FAILED  gp-pfn-paper (log: $out/gp-pfn-paper.log)"; fi
python - "$out/mlflow.db" <<'PY'
import sys, mlflow
client = mlflow.MlflowClient(f"sqlite:///{sys.argv[1]}")
for run in client.search_runs([e.experiment_id for e in client.search_experiments()]):
    m = run.data.metrics
    print(f"{run.info.run_name:<18} loss={m.get('train/loss', float('nan')):.3f} "
          f"datasets/s={m.get('throughput/datasets_per_s', float('nan')):.1f} "
          f"rows/s={m.get('throughput/rows_per_s', float('nan')):.0f}")
PY
# tokens/s and model FLOPs utilisation of gp-pfn-paper: medians of the logged steps after the first 20
# (warm-up, compilation); PEAK_TFLOPS is the GPU's dense bf16 peak (H100/H200 SXM: 989)
python - "$out/mlflow.db" "${PEAK_TFLOPS:-989}" <<'PY'
import statistics, sys, mlflow
client = mlflow.MlflowClient(f"sqlite:///{sys.argv[1]}")
peak = float(sys.argv[2])
for run in client.search_runs([e.experiment_id for e in client.search_experiments()]):
    if run.info.run_name != "gp-pfn-paper":
        continue
    def median(key):
        values = [m.value for m in client.get_metric_history(run.info.run_id, key) if m.step >= 20]
        return statistics.median(values) if values else float("nan")
    tflops = median("throughput/model_tflops_per_s")
    print(f"gp-pfn-paper  tokens/s={median('throughput/tokens_per_s'):.0f}  model TFLOP/s={tflops:.1f}  "
          f"MFU={tflops / peak:.1%} of {peak:.0f}  data wait={median('data/wait_fraction'):.2f}  "
          f"GPU hours for 100,000 steps={1e5 * 3.294e12 / (tflops * 1e12) / 3600:.2f}")
PY
