#!/usr/bin/env bash
# GPU check: a few training steps with each strategy pfnforge configures, plus bf16 throughput of
# model=base. Run on a machine with CUDA: bash benchmarks/gpu_check.sh  (needs `pip install -e '.[deepspeed]'`
# for the DeepSpeed rows). Prints one line per strategy: ok or FAILED, with the last metrics.
set -u
cd "$(dirname "$0")/.."
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
run base-throughput trainer=gpu model=base trainer.max_steps=100 trainer.log_every_n_steps=10
python - "$out/mlflow.db" <<'PY'
import sys, mlflow
client = mlflow.MlflowClient(f"sqlite:///{sys.argv[1]}")
for run in client.search_runs([e.experiment_id for e in client.search_experiments()]):
    m = run.data.metrics
    print(f"{run.info.run_name:<18} loss={m.get('train/loss', float('nan')):.3f} "
          f"datasets/s={m.get('throughput/datasets_per_s', float('nan')):.1f} "
          f"rows/s={m.get('throughput/rows_per_s', float('nan')):.0f}")
PY
