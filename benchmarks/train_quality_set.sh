#!/usr/bin/env bash
# Several timed trainings sharing one GPU, one per clip, started together (benchmarks/train_quality.py):
#   benchmarks/train_quality_set.sh MINUTES OUTDIR CLIP [CLIP ...] [-- overrides ...]
# Each run writes OUTDIR/<clip stem>/{metrics.jsonl,summary.json,curves.png}; OUTDIR/quality.tar.gz
# holds all of them (no checkpoints). Exit status: the number of runs that failed.
set -u
minutes=$1; out=$2; shift 2
clips=(); while [ $# -gt 0 ] && [ "$1" != "--" ]; do clips+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
mkdir -p "$out"
pids=()
for c in "${clips[@]}"; do
  stem=$(basename "${c%.*}")
  python3 "$(dirname "$0")/train_quality.py" --minutes "$minutes" --clip "$c" --out "$out/$stem" "$@" \
    > "$out/$stem.log" 2>&1 &
  pids+=($!)
done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=$((fail + 1)); done
(cd "$out" && tar czf quality.tar.gz --exclude=runs ./*.log ./*/metrics.jsonl ./*/summary.json ./*/curves.png 2>/dev/null)
exit $fail
