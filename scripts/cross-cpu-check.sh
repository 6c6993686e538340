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
for f in data/enwik4 data/fields.c data/alice29.txt; do
  for kernel in scalar avx2 avx512; do
    NNZ_KERNEL=$kernel "$base" compress -c -q -p tiny --model lstm "$f" >/dev/null 2>&1 </dev/null || continue
    NNZ_KERNEL=$kernel "$base" compress -c -q -p tiny "$f" >"$tmp/base.nnz"
    NNZ_KERNEL=$kernel "$native" compress -c -q -p tiny "$f" >"$tmp/native.nnz"
    cmp "$tmp/base.nnz" "$tmp/native.nnz"
    NNZ_KERNEL=$kernel "$native" decompress -c "$tmp/base.nnz" | cmp - "$f"
    NNZ_KERNEL=$kernel "$base" decompress -c "$tmp/native.nnz" | cmp - "$f"
    echo "cross-cpu: $f, NNZ_KERNEL=$kernel: baseline and native builds agree"
  done
done
