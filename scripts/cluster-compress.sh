#!/usr/bin/env bash
# Compress one large file as independent byte ranges on many cores or machines, then join
# the parts: .nnz frames concatenate, and ranges cut at multiples of --block-size give
# exactly the file that one `nnz compress --block-size SIZE` run writes.
#
#   scripts/cluster-compress.sh INPUT OUTPUT.nnz [BLOCK_MIB] [-- extra nnz options]
#
# Runs the ranges with GNU parallel (`apt-get install parallel`); its --sshlogin option
# spreads them over machines that see the same file system. A Slurm job array does the
# same with one range per task: `i=$SLURM_ARRAY_TASK_ID; tail -c +$((i*BLOCK+1)) INPUT |
# head -c $BLOCK | nnz compress --block-size $BLOCK > part.$i.nnz`, then `cat part.*.nnz`
# in numeric order.
set -euo pipefail
input=$1 output=$2 block_mib=${3:-1024}
shift $(( $# >= 3 ? 3 : 2 ))
[ "${1:-}" = "--" ] && shift
nnz=${NNZ:-nnz}
block=$((block_mib << 20))
size=$(stat -c %s "$input")
parts=$(( size == 0 ? 1 : (size + block - 1) / block ))
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
seq 0 $((parts - 1)) | parallel --halt now,fail=1 \
  "tail -c +\$(( {} * $block + 1 )) '$input' | head -c $block | $nnz compress -q --block-size ${block_mib}M $* > '$tmp/{}.nnz'"
for i in $(seq 0 $((parts - 1))); do cat "$tmp/$i.nnz"; done > "$output.tmp" && mv "$output.tmp" "$output"
