#!/usr/bin/env bash
# Runs the README's first program the way the README says: pmmd in the
# background on the embedded default config, then the program.
set -euo pipefail
pmmd=$1 program=$2
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
export PMM_SOCKET=$dir/pmm.sock
"$pmmd" 2>"$dir/pmmd.log" & pid=$!
for _ in $(seq 200); do [ -S "$PMM_SOCKET" ] && break; sleep 0.05; done
"$program" || { cat "$dir/pmmd.log" >&2; exit 1; }
