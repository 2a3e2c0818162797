#!/usr/bin/env bash
# The prepared GPU check, for when a GPU machine is available (about 8 minutes on one H100 / H200):
#   1. every method config at its own sizes, 4 steps in bf16-mixed and 16-mixed (scripts/gpu_configs.py: runs or
#      not, peak GPU memory);
#   2. BiHPF ResNet-50 training throughput at 224 px, float32 vs bf16-mixed + channels-last (images/s);
#   3. a 1-GPU DDP fit through the CLI with configs/env/ddp.yaml, in 16-mixed and in bf16-mixed, on the stand-in;
#   4. resuming that run from last.ckpt, and testing it;
#   5. the input pipeline against the model (benchmarks/gpu_pipeline.py): BiHPF training end to end from JPEG files
#      vs batches already on the GPU, torch.compile off and on; PatchCore's test pass from 1024 px PNGs the same way
#      (images/s and their ratio, into OUT_DIR/gpu_pipeline.md).
# Usage: bash scripts/gpu_check.sh [OUT_DIR]   (needs `make install` first, or PY=python3 where the packages are
# installed; no network). The reports go to OUT_DIR; stand-ins and runs to WORK (default OUT_DIR/work).
# CONFIG_BUDGET_S bounds step 1 (no config run starts after it). A failing step is reported and the next one runs.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${1:-${OUT:-runs/gpu_check}}
WORK=${WORK:-$OUT/work}
ROOT="$WORK/standins"
mkdir -p "$OUT" "$WORK"
export HF_HUB_OFFLINE=1
DATA=(--data.init_args.root "$ROOT" --data.init_args.synthetic true --data.init_args.standin_size small
      --model.init_args.pretrained false --trainer.accelerator gpu --trainer.devices 1
      --runs_dir "$WORK/runs" --trainer.enable_progress_bar false)

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "bf16", torch.cuda.is_bf16_supported())'
  "$PY" scripts/gpu_configs.py --out "$WORK/configs" --root "$ROOT" --budget_s "${CONFIG_BUDGET_S:-300}" \
      --timeout_s 150 --jobs 6
  cp "$WORK/configs/gpu_configs.md" "$OUT/"; cp "$WORK/configs/failures.log" "$OUT/" 2>/dev/null
  "$PY" scripts/gpu_throughput.py --device cuda --backbone resnet50 --image-size 224 --batch-size 64 --steps 30
  for precision in 16-mixed bf16-mixed; do
    start=$(date +%s)
    "$PY" cli.py fit --config configs/bihpf.yaml --config configs/env/ddp.yaml "${DATA[@]}" \
        --data.init_args.num_workers 8 --trainer.precision "$precision" --trainer.max_epochs 2 \
        --run_name "gpu_check_$precision" \
      && echo "DDP 1-GPU fit, $precision: $(( $(date +%s) - start )) s" || echo "DDP 1-GPU fit, $precision: FAILED"
  done
  "$PY" cli.py fit --config configs/bihpf.yaml --config configs/env/ddp.yaml "${DATA[@]}" \
      --trainer.precision bf16-mixed --trainer.max_epochs 3 --ckpt_path last --run_name gpu_check_bf16-mixed \
    && echo "resumed bf16-mixed run to epoch 3" || echo "resume: FAILED"
  "$PY" cli.py test --config configs/bihpf.yaml "${DATA[@]}" --trainer.precision bf16-mixed --ckpt_path last \
      --run_name gpu_check_bf16-mixed || echo "test: FAILED"
  find "$WORK/runs" -name "results*.md" -exec sh -c 'echo "== $1"; cat "$1"' _ {} \;
  "$PY" -m benchmarks.gpu_pipeline --work "$WORK/pipeline" --out "$OUT/gpu_pipeline.md" || echo "pipeline: FAILED"
} 2>&1 | tee "$OUT/gpu_check.log"
