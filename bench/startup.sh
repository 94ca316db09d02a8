#!/usr/bin/env bash
# `sealpost serve` start-up time (process start -> first accepted TCP connection) and idle
# memory (VmRSS / VmHWM from /proc/PID/status after a short settle), over RUNS runs.
#   bench/startup.sh            # 10 runs
#   RUNS=20 SETTLE=2 bench/startup.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_setup
python3 "$BENCH_DIR/startup.py" --bin "$SEALPOST_BIN" --config "$WORK/sealpost.toml" \
    --port "${PORT[imaps]}" --runs "${RUNS:-10}" --settle "${SETTLE:-1}" --json "$WORK/startup.jsonl"
