#!/usr/bin/env bash
# The captured minibatch step on a GPU machine (train.params.config.capture_update, on by default):
# its equality test, end-to-end throughput with it and without it, and the epoch profile with it.
#   bash benchmarks/captured_update.sh OUT_DIR
# Needs the GPU install (make install-gpu) and the assets; compiles the Warp kernels first.
set -uo pipefail
out=${1:?usage: bash benchmarks/captured_update.sh OUT_DIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
py=${PY:-python}
t0=$(date +%s)
$py -m isaacgymenvs.warmup --task HumanoidAMP > "$out/warmup.txt" 2>&1
echo "warmup: $(( $(date +%s) - t0 )) s"
$py -m pytest tests/test_captured_update.py -s -p no:cacheprovider 2>&1 | tee "$out/test_captured_update.txt" | tail -n 15
echo "pytest exit status: ${PIPESTATUS[0]}" | tee -a "$out/test_captured_update.txt"
$py benchmarks/gpu_throughput.py --skip-compile --envs 4096 --train-envs 4096 --epochs 10 \
  --also train.params.config.capture_update=False --json "$out/gpu_throughput_captured.json" > "$out/gpu_throughput.txt" 2>&1
tail -n 20 "$out/gpu_throughput.txt"
$py benchmarks/profile_epoch.py --num-envs 4096 --epochs 6 train.params.config.capture_update=True \
  > "$out/profile_epoch_captured.txt" 2>&1
head -n 22 "$out/profile_epoch_captured.txt"
echo "done: $(( $(date +%s) - t0 )) s"
