#!/usr/bin/env bash
# Installs the build into a scratch prefix, builds consumer.c with pkg-config
# against it, and runs it against the installed pmmd.
set -euo pipefail
build=$1 source=$2 cflags=${3:-}  # cflags: the build's own, e.g. -fsanitize=address
prefix=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$prefix"' EXIT
pid=
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name pmm.pc)")
export PKG_CONFIG_PATH=$libdir
cc $cflags -o "$prefix/consumer" "$source" $(pkg-config --cflags --libs pmm) -Wl,-rpath,"$(pkg-config --variable=libdir pmm)"
export PMM_SOCKET=$prefix/pmm.sock
"$prefix/bin/pmmd" 2>"$prefix/pmmd.log" & pid=$!
for _ in $(seq 200); do [ -S "$PMM_SOCKET" ] && break; sleep 0.05; done
"$prefix/consumer" || { cat "$prefix/pmmd.log" >&2; exit 1; }
