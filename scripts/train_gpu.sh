#!/usr/bin/env bash
# One prepared GPU call: train several model configs side by side on one GPU, then pack each
# run's weights, card data and training log into $OUT (one tar per run, under 16 MB each).
#
#   bash scripts/train_gpu.sh MINUTES CONFIG [CONFIG ...]
#
# The corpus travels as .carry/corpus (scripts/pack_corpus.py CONFIG .carry/corpus --stills 85),
# a bank of real encodes of it as .carry/bank (scripts/make_codec_bank.py .carry/corpus/*.mp4
# --out .carry/bank --downscale 2 --frames 32; used by configs whose chain has `encoded`), optionally 15
# validation frames as .carry/val/davis-dog; lpips as a wheel in .whl (the GPU image has PyTorch,
# OpenCV and safetensors but not lpips or PyAV: the sources say `reader: opencv`). A call carries
# at most 64 MiB with the tracked tree (46.7 MB at the third call): docs/diffusion.md, "The third
# GPU call", lists what was left out of the index for it.
#
# MOTION_MINUTES=M also trains the interpolator's motion refiner for M minutes beside them
# (scripts/train_motion.py on .carry/corpus; its bank of triplets takes about a minute to build).
#
# On the same warm machine, EXTRA='--resume max_minutes=TOTAL' bash scripts/train_gpu.sh MORE ...
# continues the runs: a resumed run's max_minutes counts its whole time, so TOTAL = first + MORE.
set -u
minutes=$1; shift
out=${OUT:-/tmp/restore-gpu-out}
mkdir -p "$out" /tmp/runs
if ls .whl/*.whl >/dev/null 2>&1; then
  ${PY:-python3} -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1
# One BLAS/OpenMP thread per process: each run starts `loader_workers` processes, and numpy's
# matmul (the bicubic resize) in 15 of them with 16 threads each left the GPU waiting (the first
# run of this script trained 775 / 122 / 56 steps in 8 minutes; with this, 230 / 350 / 180 a minute).
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
device=${DEVICE:-cuda}   # DEVICE=cpu EXTRA='batch=2 ...' for a dry run of this script on a CPU
corpus='sources=[{path: .carry/corpus/*.mp4, kind: video, reader: opencv}, {path: .carry/corpus/stills/*.jpg, kind: images}]'
bank='sources=[{path: .carry/bank/*.mkv, kind: encoded, clean: .carry/corpus, clean_downscale: 2, reader: opencv}]'
# quick validation only where its frames travelled (they cost 7 MB of the 64 MiB a call may carry)
if [ -d .carry/val/davis-dog ]; then val='val_source={path: .carry/val/davis-dog, kind: frames}'; else val='val_source={}'; fi
# a hard stop a little after the budget: SIGINT makes a run save its checkpoint and exit
limit=$(awk "BEGIN {print int($minutes * 60 + 100)}")
pids=()
for cfg in "$@"; do
  name=$(basename "$cfg" .yaml)
  # codec-damage models train on the bank and have no quick validation (it measures white noise)
  if grep -q 'name: encoded' "$cfg"; then data=("$bank" 'val_source={}'); else data=("$corpus" "$val"); fi
  timeout -s INT "$limit" ${PY:-python3} -m restore.diffusion.train "$cfg" out_dir=/tmp/runs/$name device=$device max_minutes=$minutes \
      "${data[@]}" ${EXTRA:-} > "$out/$name.log" 2>&1 &
  pids+=($!)
done
if [ -n "${MOTION_MINUTES:-}" ]; then
  # -k: a stop during the bank build (a process pool) is made final 30 s later
  timeout -k 30 -s INT "$limit" ${PY:-python3} scripts/train_motion.py --out /tmp/runs/motion --corpus .carry/corpus \
      --device "$device" --workers 8 --batch "${MOTION_BATCH:-32}" --lr 1e-3 --per-seq 120 --crops-per 6 \
      --minutes "$MOTION_MINUTES" > "$out/motion.log" 2>&1 &
  pids+=($!)
fi
for pid in "${pids[@]}"; do wait "$pid"; done
if [ -d /tmp/runs/motion ]; then (cd /tmp/runs/motion && tar czf "$out/motion.tgz" --exclude='*.train.pt' --exclude=bank .); fi
for cfg in "$@"; do
  name=$(basename "$cfg" .yaml)
  (cd /tmp/runs/$name && tar czf "$out/$name.tgz" --exclude='*.train.pt' .)
done
ls -la "$out"
