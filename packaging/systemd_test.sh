#!/usr/bin/env bash
# The systemd units as systemd reads them, and socket activation of pmmd.
#   systemd_test.sh PMMD PACKAGING_DIR PMMCTL
# 1. systemd-analyze verify on pmmd.socket and pmmd.service (with the built
#    pmmd's directory in place of the install prefix). Any warning fails.
# 2. systemd-socket-activate --seqpacket listens the way pmmd.socket does and
#    starts pmmd with LISTEN_FDS; a client (pmmctl) connects and is served,
#    and pmmd says which socket it took.
# Exit 77 (skipped) only when the systemd tools are not installed.
set -euo pipefail
pmmd=$1 src=$2 pmmctl=$3
for tool in systemd-analyze systemd-socket-activate; do
  command -v "$tool" >/dev/null || { echo "skipped: $tool not installed (scripts/install-deps)"; exit 77; }
done
dir=$(mktemp -d /tmp/pmm-systemd-XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

bindir=$(dirname "$pmmd")
for u in pmmd.service pmmd.socket; do
  sed -e "s|@CMAKE_INSTALL_FULL_BINDIR@|$bindir|g" -e "s|@CMAKE_INSTALL_FULL_DOCDIR@|/usr/share/doc/pmm|g" \
    "$src/$u" >"$dir/$u"
done
echo "== systemd-analyze verify"
out=$(cd "$dir" && systemd-analyze verify --man=no ./pmmd.socket ./pmmd.service 2>&1) || {
  echo "$out"; echo "FAIL: systemd-analyze verify exited non-zero"; exit 1; }
echo "${out:-(no output: the units are clean)}"
if [ -n "$out" ]; then echo "FAIL: systemd-analyze verify printed the above"; exit 1; fi

echo "== socket activation"
printf '[pools.general]\ntype = "shmem"\nsize = "16MiB"\n' >"$dir/pmmd.toml"
systemd-socket-activate --seqpacket -l "$dir/pmm.sock" "$pmmd" --config "$dir/pmmd.toml" \
  2>"$dir/log" &
pid=$!
for _ in $(seq 100); do [ -S "$dir/pmm.sock" ] && break; sleep 0.05; done
status=$("$pmmctl" --socket "$dir/pmm.sock" status)
echo "$status"
grep -q '^pmmd .* at ' <<<"$status" || { echo "FAIL: no status"; cat "$dir/log"; exit 1; }
grep -q "listening on $dir/pmm.sock" "$dir/log" || { echo "FAIL: pmmd did not take the socket"; cat "$dir/log"; exit 1; }
# Not activated this way, LISTEN_FDS from another process is ignored and a
# socket of the wrong type is refused with a reason.
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
[ -S "$dir/pmm.sock" ] || true
if systemd-socket-activate -l "$dir/stream.sock" "$pmmd" --config "$dir/pmmd.toml" 2>"$dir/log2" & p2=$!; then
  for _ in $(seq 100); do [ -S "$dir/stream.sock" ] && break; sleep 0.05; done
  python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(sys.argv[1])" "$dir/stream.sock" || true
  wait "$p2" && { echo "FAIL: pmmd served a SOCK_STREAM socket"; exit 1; }
  grep -q "needs an AF_UNIX" "$dir/log2" || { echo "FAIL: no reason given"; cat "$dir/log2"; exit 1; }
  cat "$dir/log2"
fi
echo "ok"
