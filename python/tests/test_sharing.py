"""Two Python processes share frames through pmm: one exports, the other
imports the token; both see each other's writes, with no copy. A holder
killed with SIGKILL loses its blocks: the daemon frees them (pmmctl shows
it), while what others hold stays."""
import os
import signal
import subprocess

import numpy as np

import pmm
from conftest import python_child

FRAME = (1080, 1920, 4)  # a BGRX 1080p frame, 8 MiB with 64-byte rows

# The other process: imports the frame, checks what the parent wrote, writes
# its own half, then waits for the parent's next write.
PEER = r"""
import sys, numpy as np, pmm
socket, token = sys.argv[1], sys.argv[2]
with pmm.connect(socket, "peer") as c, c.import_(token) as b:
    frame = b.ndarray((1080, 1920, 4), np.uint8)
    assert (frame[:540] == 200).all(), "the parent's top half"
    frame[540:] = 17                      # the bottom half is ours
    print("wrote", b.id, flush=True)
    assert sys.stdin.readline().strip() == "check"
    print("sees", int(frame[0, 0, 0]), int(frame[1079, 1919, 3]), flush=True)
    del frame
"""


def test_two_processes_see_each_others_writes(daemon, conn):
    with conn.alloc("general", int(np.prod(FRAME))) as b:
        frame = b.ndarray(FRAME, np.uint8)
        frame[:540] = 200
        token = b.export()
        peer = python_child(PEER, daemon.socket, token, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
        assert peer.stdout.readline().split() == ["wrote", str(b.id)]
        # The peer's writes are in our array: the same memory.
        assert (frame[540:] == 17).all() and (frame[:540] == 200).all()
        frame[0, 0, 0] = 1
        frame[1079, 1919, 3] = 2
        out, _ = peer.communicate("check\n", timeout=30)
        assert out.split() == ["sees", "1", "2"]
        assert peer.returncode == 0
        del frame


# A holder: allocates two blocks of its own, imports one the parent shares,
# exports one more (for nobody yet), reports, and waits to be killed.
HOLDER = r"""
import sys, numpy as np, pmm
c = pmm.connect(sys.argv[1], "holder")
own = [c.alloc("general", 1 << 20), c.alloc("display", 65536)]
views = [b.ndarray(b.size) for b in own]   # live arrays when it dies
shared = c.import_(sys.argv[2])
left = c.alloc("general", 4096)
left.ndarray(4)[:] = [9, 8, 7, 6]
token = left.export(lifetime=60)
print(own[0].id, own[1].id, shared.id, left.id, token, flush=True)
sys.stdin.readline()
"""


def test_sigkill_of_a_holder_frees_its_blocks(daemon, conn):
    mine = conn.alloc("general", 4096)
    holder = python_child(HOLDER, daemon.socket, mine.export(), stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE)
    own0, own1, shared, left, token = holder.stdout.readline().split()
    own0, own1, shared, left = int(own0), int(own1), int(shared), int(left)
    assert shared == mine.id
    assert daemon.block_ids() == sorted([mine.id, own0, own1, left])
    blocks = {b["id"]: b for b in daemon.pmmctl("blocks")}
    assert blocks[mine.id]["refcount"] == 2  # ours and the holder's

    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert holder.returncode == -signal.SIGKILL

    # Its own blocks are freed; ours keeps our reference; the block it
    # exported is held by the export (a producer may die before its
    # consumer starts) until imported or expired.
    assert daemon.wait_block_ids([mine.id, left]) == sorted([mine.id, left])
    blocks = {b["id"]: b for b in daemon.pmmctl("blocks")}
    assert blocks[mine.id]["refcount"] == 1
    assert [h["kind"] for h in blocks[left]["holders"]] == ["export"]
    assert [s for s in daemon.pmmctl("sessions") if s["pid"] == holder.pid] == []
    pools = {p["name"]: p for p in daemon.pmmctl("pools")}
    assert pools["display"]["used"] == 0

    # The dead producer's frame is still there for its consumer, once.
    with conn.import_(token) as b:
        assert np.asarray(b)[:4].tolist() == [9, 8, 7, 6]
    assert daemon.wait_block_ids([mine.id]) == [mine.id]
    mine.put()
    assert daemon.wait_block_ids([]) == []
