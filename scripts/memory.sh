#!/usr/bin/env bash
# Peak memory of one nnz run, sampled over time: the resident set (VmRSS) and its peak
# (VmHWM) every INTERVAL seconds, for at most SECONDS (the run is stopped there, so a
# long compression can be measured through its tokenizer pass and into its coding loop).
#
#   scripts/memory.sh SECONDS INTERVAL nnz ARGS...
#   scripts/memory.sh 600 10 target/release/nnz compress -f -p default big.txt /tmp/big.nnz
set -euo pipefail
limit=$1 interval=$2
shift 2
"$@" &
pid=$!
start=$(date +%s)
peak=0
echo "seconds  rss_MB  peak_MB"
while kill -0 "$pid" 2>/dev/null; do
    status=$(cat /proc/$pid/status 2>/dev/null) || break
    rss=$(awk '/^VmRSS/ {print int($2/1024)}' <<<"$status")
    peak=$(awk '/^VmHWM/ {print int($2/1024)}' <<<"$status")
    now=$(($(date +%s) - start))
    printf "%7d  %6s  %7s\n" "$now" "$rss" "$peak"
    if ((now >= limit)); then
        kill -INT "$pid"
        wait "$pid" || true
        echo "stopped after ${limit} s; peak so far ${peak} MB"
        exit 0
    fi
    sleep "$interval"
done
wait "$pid"
echo "finished; last sampled peak ${peak} MB"
