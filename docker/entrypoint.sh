#!/usr/bin/env bash
# Entrypoint of the training image: refuse placeholder secrets, warm the MuJoCo Warp kernel cache
# once per (task, GPU architecture, code), then run the command (`ray start ...`, `make sweep`, bash).
#
#   AMP_WARMUP=once (default) | always | never      AMP_WARMUP_TASKS="HumanoidAMP G1AMP"
#
# The image already holds the kernels compiled by `make warmup-aot` for the architectures it was
# built for; `make warmup` then loads them in seconds and compiles only what is missing (another
# GPU architecture, or PTX for a driver newer than warp's toolkit) into $AMP_WARP_CACHE, a named
# volume, so the next start finds them.
set -euo pipefail
cd "$(dirname "$0")/.."  # the checkout (/opt/amp in the image)

for var in RAY_AUTH_TOKEN MLFLOW_TRACKING_PASSWORD; do
    case "${!var:-}" in
        change-me*) echo "entrypoint: $var is still the placeholder of docker/.env.example; run \`make docker-env\`" \
                         "(or set a secret in docker/.env) and recreate the containers" >&2
                    exit 2 ;;
    esac
done

mode="${AMP_WARMUP:-once}"
if [ "$mode" != never ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU; then
    arch="sm$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d ' .')"
    # the code whose kernels are cached: the backend, warp and MuJoCo Warp versions
    code="$({ cat isaacgymenvs/sim/mujoco_warp.py .venv/lib/python3.11/site-packages/warp_lang-*.dist-info/METADATA \
              .venv/lib/python3.11/site-packages/mujoco_warp-*.dist-info/METADATA 2>/dev/null || true; } \
            | sha256sum | cut -c1-12)"
    mkdir -p "$AMP_WARP_CACHE"
    for task in ${AMP_WARMUP_TASKS:-HumanoidAMP G1AMP}; do
        stamp="$AMP_WARP_CACHE/.warm-$task-$arch-$code"
        if [ "$mode" = always ] || [ ! -e "$stamp" ]; then
            echo "entrypoint: make warmup TASK=$task ($arch, kernel cache $AMP_WARP_CACHE)" >&2
            # installed in the image: do not reinstall (`-o install-gpu`)
            if ! make --no-print-directory -o install-gpu warmup TASK="$task"; then
                echo "entrypoint: make warmup TASK=$task failed (AMP_WARMUP_TASKS names the tasks; AMP_WARMUP=never skips)" >&2
                exit 1
            fi
            touch "$stamp"
        fi
    done
fi

exec "$@"
