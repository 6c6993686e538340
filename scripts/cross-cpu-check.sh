#!/usr/bin/env bash
# Builds nnz twice -- for the x86-64 baseline (no SIMD assumed at compile time) and for
# this CPU (-C target-cpu=native) -- and checks that each build writes the same bits and
# decodes the other's files, under every kernel path this CPU has. Run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTFLAGS="-C target-cpu=x86-64" cargo build --release --quiet --target-dir target/baseline
RUSTFLAGS="-C target-cpu=native" cargo build --release --quiet --target-dir target/native
base=target/baseline/release/nnz
native=target/native/release/nnz
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Every model that runs a network, on the kernels: the default (the byte model), the
# tokenized LSTM and the Transformer; the larger sample with the default only.
check() { # FILE KERNEL MODEL-ARGS...
  local f=$1 kernel=$2
  shift 2
  NNZ_KERNEL=$kernel "$base" compress -c -q -p tiny "$@" "$f" >"$tmp/base.nnz"
  NNZ_KERNEL=$kernel "$native" compress -c -q -p tiny "$@" "$f" >"$tmp/native.nnz"
  cmp "$tmp/base.nnz" "$tmp/native.nnz"
  NNZ_KERNEL=$kernel "$native" decompress -c "$tmp/base.nnz" | cmp - "$f"
  NNZ_KERNEL=$kernel "$base" decompress -c "$tmp/native.nnz" | cmp - "$f"
  echo "cross-cpu: $f, NNZ_KERNEL=$kernel, ${*:-default options}: baseline and native builds agree"
}
for kernel in scalar avx2 avx512; do
  # Skip the paths this CPU lacks (nnz refuses them with a one-line error).
  NNZ_KERNEL=$kernel "$base" compress -c -q --model store data/enwik4 >/dev/null 2>&1 </dev/null || continue
  for f in data/enwik4 data/fields.c; do
    for model in auto lstm transformer; do
      check "$f" "$kernel" --model "$model"
    done
  done
  check data/alice29.txt "$kernel"
done
