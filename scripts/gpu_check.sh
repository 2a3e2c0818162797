#!/usr/bin/env bash
# The prepared GPU check, for when a GPU machine is available (about 3 minutes on one H100):
#   1. BiHPF ResNet-50 training throughput at 224 px, float32 vs bf16-mixed + channels-last (images/s);
#   2. a 1-GPU DDP fit through the CLI with configs/env/ddp.yaml, in 16-mixed and in bf16-mixed, on the stand-in;
#   3. resuming that run from last.ckpt.
# Usage: bash scripts/gpu_check.sh [OUT_DIR]   (needs `make install` first; no network)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${1:-${OUT:-runs/gpu_check}}
mkdir -p "$OUT"
ROOT="$OUT/standins"
export HF_HUB_OFFLINE=1

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "bf16", torch.cuda.is_bf16_supported())'
  "$PY" scripts/gpu_throughput.py --device cuda --backbone resnet50 --image-size 224 --batch-size 64 --steps 30
  for precision in 16-mixed bf16-mixed; do
    start=$(date +%s)
    "$PY" cli.py fit --config configs/bihpf.yaml --config configs/env/ddp.yaml \
        --data.init_args.root "$ROOT" --data.init_args.synthetic true --data.init_args.standin_size small \
        --data.init_args.num_workers 8 --model.init_args.pretrained false \
        --trainer.accelerator gpu --trainer.devices 1 --trainer.precision "$precision" --trainer.max_epochs 2 \
        --run_name "gpu_check_$precision" --runs_dir "$OUT/runs" --trainer.enable_progress_bar false
    echo "DDP 1-GPU fit, $precision: $(( $(date +%s) - start )) s"
  done
  "$PY" cli.py fit --config configs/bihpf.yaml --config configs/env/ddp.yaml \
      --data.init_args.root "$ROOT" --data.init_args.synthetic true --data.init_args.standin_size small \
      --model.init_args.pretrained false --trainer.accelerator gpu --trainer.devices 1 \
      --trainer.precision bf16-mixed --trainer.max_epochs 3 --ckpt_path last \
      --run_name gpu_check_bf16-mixed --runs_dir "$OUT/runs" --trainer.enable_progress_bar false
  echo "resumed bf16-mixed run to epoch 3"
  "$PY" cli.py test --config configs/bihpf.yaml --data.init_args.root "$ROOT" --data.init_args.synthetic true \
      --data.init_args.standin_size small --model.init_args.pretrained false --trainer.accelerator gpu \
      --trainer.devices 1 --trainer.precision bf16-mixed --ckpt_path last --run_name gpu_check_bf16-mixed \
      --runs_dir "$OUT/runs" --trainer.enable_progress_bar false
  find "$OUT/runs" -name "results*.md" -exec sh -c 'echo "== $1"; cat "$1"' _ {} \;
} 2>&1 | tee "$OUT/gpu_check.log"
