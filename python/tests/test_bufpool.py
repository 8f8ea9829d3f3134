"""Buffer pools (pmm.BufPool) and allocations that wait, against a real
pmmd: buffers recycle in this process without a daemon round trip (pmmctl's
request counters and block list show it); a buffer exported to another
Python process comes back only once that process put it or was SIGKILLed;
a buffer put while a numpy view lives goes back when the view dies; an
allocation that waits is served when another process frees memory."""
import os
import re
import resource
import signal
import subprocess
import threading
import time

import numpy as np
import pytest

import pmm
from conftest import python_child


def request_counts(daemon):
    """pmmd's own request counters (pmmctl metrics, admin only: we are root)."""
    out = subprocess.run([os.environ["PMM_PMMCTL"], "--socket", daemon.socket, "metrics"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return {m[1]: int(float(m[2]))
            for m in re.finditer(r'^pmm_requests_total\{type="(\w+)"\} (\S+)$', out, re.M)}


def test_acquire_and_put_recycle_the_same_buffers_without_the_daemon(daemon, conn):
    with conn.bufpool("general", 3, 1 << 20) as pool:
        assert pool.stats() == (3, 3, 0, 0)
        assert (pool.size, pool.count, pool.max_count, pool.pools) == (1 << 20, 3, 3, "general")
        first = [pool.acquire(timeout=0) for _ in range(3)]
        assert all(b.buffer and b.size == 1 << 20 for b in first)
        ids = sorted(b.id for b in first)
        assert daemon.block_ids() == ids
        assert pool.stats() == (3, 0, 3, 0)
        for b in first:
            b.put()
        assert pool.stats() == (3, 3, 0, 0)

        before = request_counts(daemon)
        seen = set()
        for i in range(200):
            with pool.acquire(timeout=0) as b:
                b.ndarray(8)[:] = i
                seen.add(b.id)
        # What a put buffer held is still there for the next acquire (LIFO).
        with pool.acquire() as b:
            assert b.ndarray(8).tolist() == [199] * 8
        after = request_counts(daemon)
        assert seen <= set(ids)
        # No allocation and no put reached the daemon: the cycles were local.
        assert after.get("allocate", 0) == before.get("allocate", 0) > 0
        assert after.get("put", 0) == before.get("put", 0)
        assert daemon.block_ids() == ids
        assert pool.stats() == (3, 3, 0, 0)
    assert pool.closed
    assert daemon.wait_block_ids([]) == []


def test_a_full_pool_grows_to_max_count_then_times_out(daemon, conn):
    pool = conn.bufpool("general", 1, 4096, max_count=2)
    a = pool.acquire(timeout=0)
    b = pool.acquire(timeout=0)  # grown by one allocation
    assert pool.stats() == (2, 0, 2, 0)
    assert len(daemon.block_ids()) == 2
    start = time.monotonic()
    with pytest.raises(pmm.Timeout, match=r"within 0.3 s.* 2 are acquired here") as e:
        pool.acquire(timeout=0.3)
    assert time.monotonic() - start >= 0.3
    assert isinstance(e.value, TimeoutError) and isinstance(e.value, pmm.Error)
    with pytest.raises(pmm.Timeout):
        pool.acquire(timeout=0)
    # A put from another thread while this one waits (GIL released) serves it.
    threading.Timer(0.2, a.put).start()
    c = pool.acquire(timeout=10)
    assert c.id == a.id
    for x in (b, c):
        x.put()
    pool.close()
    assert daemon.wait_block_ids([]) == []


def test_ctrl_c_interrupts_an_acquire_that_waits_forever(daemon, conn):
    pool = conn.bufpool("general", 1, 4096)
    held = pool.acquire()
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        pool.acquire()  # timeout=None: until a buffer comes free
    assert 0.3 <= time.monotonic() - start < 10
    assert pool.stats() == (1, 0, 1, 0)  # nothing half-taken
    held.put()
    pool.close()


# The importer: imports the buffer, shows what it reads, then puts it when
# told to (or is killed).
IMPORTER = r"""
import sys, pmm
c = pmm.connect(sys.argv[1], "importer")
b = c.import_(sys.argv[2])
print(int(b.ndarray(4)[0]), flush=True)
if sys.stdin.readline().strip() == "put":
    b.put()
    print("put", flush=True)
    sys.stdin.readline()
"""


def share_one(daemon, pool, value):
    """Acquires the pool's buffer, writes `value`, exports it to an importer
    process and puts it; returns (buffer id, importer)."""
    buf = pool.acquire(timeout=0)
    buf.ndarray(4)[:] = value
    token = buf.export()
    buf.put()
    # Put here, but exported: not free until the importer lets go.
    assert pool.stats() == (1, 0, 0, 1)
    child = python_child(IMPORTER, daemon.socket, token, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    assert child.stdout.readline().strip() == str(value)
    with pytest.raises(pmm.Timeout, match="1 are held by importers"):
        pool.acquire(timeout=0.2)
    return buf.id, child


def test_an_exported_buffer_comes_back_after_its_importer_puts_it_or_dies(daemon, conn):
    pool = conn.bufpool("general", 1, 1 << 20)
    buf_id, child = share_one(daemon, pool, 7)
    child.stdin.write("put\n")
    child.stdin.flush()
    assert child.stdout.readline().strip() == "put"
    again = pool.acquire(timeout=10)
    assert again.id == buf_id and again.ndarray(4).tolist() == [7] * 4
    again.put()
    child.communicate("\n", timeout=30)

    buf_id, child = share_one(daemon, pool, 9)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    again = pool.acquire(timeout=10)
    assert again.id == buf_id and again.ndarray(4).tolist() == [9] * 4
    again.put()
    assert daemon.block_ids() == [buf_id]  # one buffer all along
    pool.close()
    assert daemon.wait_block_ids([]) == []


def test_a_buffer_put_with_a_live_view_goes_back_when_the_view_dies(daemon, conn):
    pool = conn.bufpool("general", 1, 4096)
    b = pool.acquire()
    arr = b.ndarray(4096)
    mv = memoryview(b)
    b.put()
    assert b.closed and "put" in repr(b)
    with pytest.raises(pmm.InvalidArgument, match="was put"):
        b.ndarray(4)
    assert pool.stats() == (1, 0, 1, 0)
    with pytest.raises(pmm.Timeout):
        pool.acquire(timeout=0)
    arr[:] = 5  # the memory is still this process's
    del arr
    assert pool.stats() == (1, 0, 1, 0)
    mv.release()
    assert pool.stats() == (1, 1, 0, 0)
    again = pool.acquire(timeout=0)
    assert again.id == b.id and np.asarray(again)[:3].tolist() == [5, 5, 5]
    again.put()
    pool.close()


def test_closing_the_pool_or_the_connection_waits_for_views(daemon):
    with pmm.connect(daemon.socket, "closer") as c:
        pool = c.bufpool("general", 2, 4096)
        viewed, plain = pool.acquire(), pool.acquire()
        arr = viewed.ndarray(16)
        ids = sorted([viewed.id, plain.id])
        pool.close()
        assert pool.closed
        with pytest.raises(pmm.InvalidArgument, match="BufPool is closed"):
            pool.acquire(timeout=0)
        with pytest.raises(pmm.InvalidArgument, match="BufPool is closed"):
            plain.ndarray(4)
        arr[:] = 3  # held until the view goes
        assert daemon.block_ids() == ids
        del arr
        assert daemon.wait_block_ids([]) == []
        plain.put()  # after the pool took it back: nothing left to do

        # Closing the connection closes its pools, here also after the last view.
        pool = c.bufpool("general", 1, 4096)
        arr = pool.acquire().ndarray(16)
        c.close()
        assert pool.closed
        arr[:] = 4
        assert len(daemon.block_ids()) == 1
        del arr
        assert daemon.wait_block_ids([]) == []


# Fills most of the general pool, frees it when told to.
HOG = r"""
import sys, pmm
c = pmm.connect(sys.argv[1], "hog")
b = c.alloc("general", 24 << 20)
print("full", flush=True)
sys.stdin.readline()
b.put()
print("freed", flush=True)
sys.stdin.readline()
"""


def test_a_waiting_alloc_is_served_when_another_process_frees(daemon, conn):
    hog = python_child(HOG, daemon.socket, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert hog.stdout.readline().strip() == "full"
    with pytest.raises(pmm.NoMemory):
        conn.alloc("general", 16 << 20)
    start = time.monotonic()
    with pytest.raises(pmm.NoMemory, match="wait"):
        conn.alloc("general", 16 << 20, wait=0.2)
    assert time.monotonic() - start >= 0.2

    result = {}

    def waiter():
        try:
            result["block"] = conn.alloc("general", 16 << 20, wait=20)
        except Exception as e:  # reported below
            result["error"] = e

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.3)
    assert t.is_alive() and result == {}  # queued in pmmd, and the GIL is free
    hog.stdin.write("\n")
    hog.stdin.flush()
    assert hog.stdout.readline().strip() == "freed"
    t.join(20)
    assert "block" in result, result
    assert result["block"].size == 16 << 20
    result["block"].put()
    hog.communicate("\n", timeout=30)


def minor_faults_writing(daemon, populate):
    with pmm.connect(daemon.socket, "faults", populate=populate) as c:
        with c.alloc("general", 4096) as first:  # maps (and populates) the pool
            with c.alloc("general", 4 << 20) as b:
                arr = b.ndarray(4 << 20)
                before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                arr[::4096] = 1  # one write per 4 KiB page
                faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
                del arr
    return faults


def test_populate_maps_pools_without_later_page_faults(daemon):
    plain = minor_faults_writing(daemon, False)
    populated = minor_faults_writing(daemon, True)
    assert plain >= 512, plain  # 1024 pages, each faulted on first write
    assert populated < 64, populated


def test_bad_arguments_raise_clear_errors(daemon, conn):
    with pytest.raises(pmm.InvalidArgument,
                       match=r"wait must be from 0 to 60 seconds \(PMM_ALLOC_MAX_WAIT_MS\).*61"):
        conn.alloc("general", 4096, wait=61)
    for bad in (-1, float("nan"), float("inf"), 10**400):
        with pytest.raises(pmm.InvalidArgument, match="wait must be from 0 to 60"):
            conn.alloc("general", 4096, wait=bad)
    for bad in ("1", True, [1]):
        with pytest.raises(TypeError, match="wait must be a number of seconds or None"):
            conn.alloc("general", 4096, wait=bad)
    conn.alloc("general", 4096, wait=0).put()  # 0: do not wait
    with pytest.raises(TypeError, match="populate must be True or False, not str"):
        pmm.connect(daemon.socket, populate="yes")
    with pytest.raises(TypeError, match="populate must be True or False, not NoneType"):
        pmm.connect(daemon.socket, populate=None)

    with pytest.raises(pmm.InvalidArgument, match=r"count \(buffers.*at least 1 \(got 0\)"):
        conn.bufpool("general", 0, 4096)
    with pytest.raises(pmm.InvalidArgument, match=r"at most 256 \(got 257\)"):
        conn.bufpool("general", 257, 4096)
    with pytest.raises(TypeError, match="count .* must be an integer, not str"):
        conn.bufpool("general", "2", 4096)
    with pytest.raises(pmm.InvalidArgument, match=r"size \(bytes per buffer\) must be at least 1"):
        conn.bufpool("general", 2, 0)
    with pytest.raises(pmm.InvalidArgument, match="power of two"):
        conn.bufpool("general", 2, 4096, alignment=3)
    with pytest.raises(pmm.InvalidArgument, match=r"max_count must be None.*from count \(2\)"):
        conn.bufpool("general", 2, 4096, max_count=1)
    with pytest.raises(pmm.InvalidArgument, match=r"max_count.*\(got 300\)"):
        conn.bufpool("general", 2, 4096, max_count=300)
    with pytest.raises(pmm.InvalidArgument, match="pools must name at least one pool"):
        conn.bufpool("", 2, 4096)
    with pytest.raises(TypeError, match="zero must be True or False"):
        conn.bufpool("general", 2, 4096, zero="no")
    with pytest.raises(pmm.NotFound, match="nosuch"):
        conn.bufpool("nosuch", 2, 4096)
    # All or none: a pool whose buffers do not all fit allocates none.
    with pytest.raises(pmm.NoMemory):
        conn.bufpool("general", 5, 8 << 20)
    assert daemon.block_ids() == []

    pool = conn.bufpool("general", 1, 4096)
    for bad in (-1, float("nan")):
        with pytest.raises(pmm.InvalidArgument, match="timeout must be from 0 to"):
            pool.acquire(timeout=bad)
    with pytest.raises(TypeError, match="timeout must be a number of seconds or None"):
        pool.acquire(timeout="1")
    b = pool.acquire(timeout=0)
    b.put()
    b.put()  # once is enough, as for any block
    pool.close()
    pool.close()
    assert "closed" in repr(pool)
    with pytest.raises(pmm.InvalidArgument, match="BufPool is closed"):
        pool.stats()
    with pytest.raises(pmm.InvalidArgument, match="BufPool is closed"):
        pool.acquire()
    conn.close()
    with pytest.raises(pmm.InvalidArgument, match="connection is closed"):
        conn.bufpool("general", 1, 4096)
