#!/usr/bin/env bash
# One large input through nnz (each model named) and the classic peers, end to end:
# compressed size, bits per byte, wall and CPU seconds and peak resident memory of the
# compression and of the decompression (GNU time), and the round trip checked with cmp.
# Prints a Markdown table row per run, as it goes (run it under nohup for large inputs).
#
#   scripts/big-text.sh FILE [RUN...]
#   scripts/big-text.sh /work/bench/linux100 xz zstd nnz-auto nnz-bytes nnz-lstm nnz-transformer
#
# RUN is one of: xz (xz -9 -T0), zstd (zstd -19 -T0), nnz-auto (plain `nnz`, the model
# `auto` picks), nnz-bytes, nnz-lstm, nnz-transformer (`--model M`, preset fast);
# NNZ_ARGS adds options to every nnz run (e.g. NNZ_ARGS="-p default"). Default: all.
#
# The 100 MiB text of the README's table is the start of the Linux 6.1 sources' files,
# concatenated (Debian's linux-source-6.1 package, 6.1.172-1):
#   apt-get download linux-source-6.1 && dpkg-deb -x linux-source-6.1_*_all.deb x
#   tar -xOJf x/usr/src/linux-source-6.1.tar.xz | head -c 104857600 > linux100
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
in=$1
shift
runs=("$@")
[ ${#runs[@]} -gt 0 ] || runs=(xz zstd nnz-auto nnz-bytes nnz-lstm nnz-transformer)
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin nnz
nnz="${CARGO_TARGET_DIR:-$root/target}/release/nnz"
work=$(mktemp -d "${TMPDIR:-/tmp}/big-text.XXXXXX")
trap 'rm -rf "$work"' EXIT
size=$(stat -c %s "$in")
read -r -a extra <<<"${NNZ_ARGS:-}"

# Runs "$@" under GNU time; prints "wall cpu peak_MB".
measure() {
    /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@"
    awk '{printf "%.0f %.0f %.0f\n", $1, $2 + $3, $4 / 1024}' "$work/time"
}

echo "| run | bytes | bits/byte | compress s (wall / CPU) | peak MB | decompress s (wall / CPU) | peak MB | round trip |"
echo "|---|---|---|---|---|---|---|---|"
for run in "${runs[@]}"; do
    out="$work/out"
    case $run in
        xz) c=(xz -9 -T0 -k -c "$in") d=(xz -d -T0 -c "$out") ;;
        zstd) c=(zstd -19 -T0 -q -c "$in") d=(zstd -d -q -c "$out") ;;
        nnz-auto) c=("$nnz" -q -c "${extra[@]}" "$in") d=("$nnz" -d -q -c "$out") ;;
        nnz-*) c=("$nnz" -q -c --model "${run#nnz-}" "${extra[@]}" "$in") d=("$nnz" -d -q -c "$out") ;;
        *) echo "unknown run $run" >&2; exit 2 ;;
    esac
    read -r cw cc cm < <(measure sh -c '"$@" > "$0"' "$out" "${c[@]}")
    bytes=$(stat -c %s "$out")
    read -r dw dc dm < <(measure sh -c '"$@" > "$0"' "$work/back" "${d[@]}")
    if cmp -s "$in" "$work/back"; then ok=OK; else ok=FAILED; fi
    label=$run
    [[ $run == nnz-auto ]] && label="nnz auto: $("$nnz" info "$out" | awk -F': *' '/^ *model/ {print $2; exit}' | sed 's/ ([^)]*)//')"
    awk -v l="$label" -v b="$bytes" -v n="$size" -v cw="$cw" -v cc="$cc" -v cm="$cm" -v dw="$dw" -v dc="$dc" -v dm="$dm" -v ok="$ok" \
        'BEGIN {printf "| %s | %d | %.4f | %d / %d | %d | %d / %d | %d | %s |\n", l, b, 8 * b / n, cw, cc, cm, dw, dc, dm, ok}'
    rm -f "$out" "$work/back"
done
