#!/usr/bin/python3
"""What a SIGKILLed process leaves behind: multiprocessing.shared_memory
beside pmm.

A "holder" process makes one buffer of each kind and fills it:

  - a multiprocessing.shared_memory.SharedMemory (a file in /dev/shm that
    lives until someone unlinks it; Python's resource_tracker, a helper
    process, unlinks what its parent did not, if the tracker itself
    survives);
  - a pmm block (the daemon counts its holders; a holder's references end
    when its socket closes, however it died).

Then the holder is killed with SIGKILL, two ways:

  process   the holder alone (kill -9 PID): its resource_tracker survives,
            notices, warns and unlinks the segment;
  group     its whole process group (kill -9 -PGID: what a container stop, a
            systemd unit stop, a terminal's hang-up or an OOM kill of the
            group does): the tracker dies with it and the segment stays in
            /dev/shm, holding memory, until the machine reboots or someone
            finds and unlinks it by hand.

and the script looks at /dev/shm and asks pmmd (pmmctl --json blocks) what
is left. It removes the /dev/shm files it leaked afterwards unless --keep.

  PYTHONPATH=build/release/python /usr/bin/python3 python/compare_shared_memory.py \\
      --pmmd build/release/src/daemon/pmmd --pmmctl build/release/tools/pmmctl/pmmctl

--pmmd starts a private daemon (built-in config) on a temporary socket; without
it the script uses the running one ($PMM_SOCKET, or --socket). --json prints
the findings as one JSON object (python/tests/test_compare.py reads it).
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HOLDER = r"""
import sys
from multiprocessing import shared_memory
import pmm
size, pool, sock = int(sys.argv[1]), sys.argv[2], sys.argv[3] or None
shm = shared_memory.SharedMemory(create=True, size=size)
shm.buf[:] = b"\x5a" * size
conn = pmm.connect(sock, "compare")
block = conn.alloc(pool, size)
block.ndarray(size)[:] = 0x5a
print(shm.name, block.id, flush=True)
sys.stdin.readline()   # killed before it reads anything
"""


def mib(n):
    return f"{n / (1 << 20):g} MiB"


def start_pmmd(pmmd, directory):
    sock = os.path.join(directory, "pmm.sock")
    proc = subprocess.Popen([pmmd, "--socket", sock], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            s.connect(sock)
            return proc, sock
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"compare_shared_memory: {pmmd} did not start")
            time.sleep(0.01)
        finally:
            s.close()


def pmm_block_ids(pmmctl, sock):
    cmd = [pmmctl, "--json", "blocks"] + (["--socket", sock] if sock else [])
    return {b["id"] for b in json.loads(subprocess.run(cmd, capture_output=True, text=True,
                                                       check=True).stdout)}


def run_case(kill, args, sock):
    """Starts a holder in a session (and process group) of its own, kills it
    the `kill` way, and returns what each kind of memory left behind."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(args.size), args.pool, sock or ""],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    line = holder.stdout.readline().split()
    if len(line) != 2:
        holder.kill()
        raise SystemExit("compare_shared_memory: the holder failed: " + holder.stderr.read())
    shm_name, block_id = line[0], int(line[1])
    if kill == "process":
        os.kill(holder.pid, signal.SIGKILL)
    else:
        os.killpg(holder.pid, signal.SIGKILL)
    holder.wait()
    # Each side gets up to 1 s to clean up (pmmd sees the socket close at
    # once; a surviving resource tracker sees its pipe close and unlinks
    # within milliseconds).
    path = os.path.join("/dev/shm", shm_name)
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        blocks_left = block_id in pmm_block_ids(args.pmmctl, sock)
        if not blocks_left and not os.path.exists(path):
            break
        time.sleep(0.05)
    stderr = holder.stderr.read()
    holder.stdin.close()
    holder.stdout.close()
    holder.stderr.close()
    return {
        "kill": kill,
        "shared_memory_left": [path] if os.path.exists(path) else [],
        "resource_tracker_warning": "leaked shared_memory" in stderr,
        "pmm_blocks_left": [block_id] if block_id in pmm_block_ids(args.pmmctl, sock) else [],
    }


def describe(case, size):
    if case["shared_memory_left"]:
        shm = f"LEFT BEHIND: {case['shared_memory_left'][0]} ({mib(size)})"
    elif case["resource_tracker_warning"]:
        shm = "unlinked by its resource_tracker (with a leak warning)"
    else:
        shm = "unlinked"
    pmm_text = (f"STILL HELD: block {case['pmm_blocks_left'][0]}" if case["pmm_blocks_left"]
                else "freed by pmmd (0 blocks left)")
    return shm, pmm_text


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pmmd", help="start this pmmd on a private socket for the run")
    parser.add_argument("--socket", help="the running daemon's socket (default: $PMM_SOCKET...)")
    parser.add_argument("--pmmctl", default=shutil.which("pmmctl") or "pmmctl")
    parser.add_argument("--pool", default="general", help="pmm pool to allocate from")
    parser.add_argument("--size", type=int, default=8 << 20, help="bytes per buffer")
    parser.add_argument("--keep", action="store_true", help="leave leaked /dev/shm files")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    args = parser.parse_args()

    directory = tempfile.mkdtemp(prefix="pmm-compare-")
    daemon, sock = (start_pmmd(args.pmmd, directory) if args.pmmd else (None, args.socket))
    try:
        cases = [run_case(kill, args, sock) for kill in ("process", "group")]
    finally:
        if daemon:
            daemon.terminate()
            daemon.wait()
        shutil.rmtree(directory, ignore_errors=True)

    if args.json:
        print(json.dumps({"size": args.size, "cases": cases}))
    else:
        rows = [("after SIGKILL of", "multiprocessing.shared_memory", "pmm")]
        names = {"process": "the holder only", "group": "its process group"}
        rows += [(names[c["kill"]], *describe(c, args.size)) for c in cases]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for r in rows:
            print("  ".join(text.ljust(w) for text, w in zip(r, widths)).rstrip())
    if not args.keep:
        for case in cases:
            for path in case["shared_memory_left"]:
                os.unlink(path)
        if not args.json and any(c["shared_memory_left"] for c in cases):
            print("(the leaked /dev/shm files were unlinked now; --keep leaves them)")


if __name__ == "__main__":
    main()
