"""Lifetime rules (python/README.md, "Lifetime"): a memoryview or numpy
array over a block keeps the block held, so Python never touches memory
pmm took back; put() and close() with live views are carried out when the
last view goes. Checked against the daemon's own books through pmmctl."""
import gc
import os
import signal

import numpy as np
import pytest

import pmm


def our_sessions(daemon):
    return [s for s in daemon.pmmctl("sessions") if s["pid"] == os.getpid()]


def test_put_with_a_live_array_waits_for_the_array(daemon, conn):
    b = conn.alloc("general", 1 << 20)
    arr = b.ndarray((512, 512), np.float32)
    arr[:] = 3
    b.put()
    assert b.closed and b.views == 1
    # The daemon still holds the block for us: the array is still ours.
    assert daemon.block_ids() == [b.id]
    arr += 1
    assert float(arr.mean()) == 4.0
    # A slice of the array is a view of the same memory: it holds it too.
    part = arr[100:200]
    del arr
    gc.collect()
    assert daemon.block_ids() == [b.id]
    assert float(part.sum()) == 4.0 * 100 * 512
    del part
    assert daemon.wait_block_ids([]) == []
    assert b.views == 0


def test_put_with_a_memoryview_waits_for_its_release(daemon, conn):
    b = conn.alloc("general", 4096)
    m = memoryview(b)
    b.put()
    assert daemon.block_ids() == [b.id]
    m[0] = 9
    m.release()
    assert daemon.wait_block_ids([]) == []


def test_a_put_block_cannot_be_used(conn):
    b = conn.alloc("general", 4096)
    b.put()
    for use in (lambda: memoryview(b), lambda: np.asarray(b), lambda: b.ndarray(16),
                lambda: b.export(), lambda: b.sysv_export(), lambda: b.prefault(),
                lambda: b.fd, lambda: b.offset, lambda: b.phys):
        with pytest.raises(pmm.InvalidArgument, match=f"block {b.id} was put"):
            use()
    b.put()  # once is enough; a second put does nothing (like file.close())
    assert b.size == 4096 and "put" in repr(b)


def test_close_with_live_arrays_keeps_the_session_until_they_go(daemon):
    c = pmm.connect(daemon.socket, "lifetime")
    viewed = c.alloc("general", 1 << 20)
    other = c.alloc("general", 4096)
    arr = viewed.ndarray(1 << 18, np.uint32)
    arr[:] = 0xABCD
    c.close()
    assert c.closed
    # Closed for every new use...
    with pytest.raises(pmm.InvalidArgument, match="connection is closed"):
        c.alloc("general", 4096)
    with pytest.raises(pmm.InvalidArgument, match="connection is closed"):
        other.export()
    with pytest.raises(pmm.InvalidArgument):
        memoryview(viewed)
    # ...but the array still reads and writes real, held memory.
    arr[1] = 7
    assert int(arr[0]) == 0xABCD and int(arr[1]) == 7
    assert len(our_sessions(daemon)) == 1
    assert sorted(daemon.block_ids()) == sorted([viewed.id, other.id])
    del arr
    gc.collect()
    # The last view gone: the session ends and everything it held is freed.
    assert daemon.wait_block_ids([]) == []
    assert our_sessions(daemon) == []


def test_an_array_alone_keeps_its_connection_and_block(daemon):
    # No name holds the connection or the block: the array is enough.
    arr = pmm.connect(daemon.socket, "chained").alloc("general", 65536).ndarray((256, 256))
    gc.collect()
    arr[:] = 5
    assert len(our_sessions(daemon)) == 1 and len(daemon.block_ids()) == 1
    assert int(arr.sum()) == 5 * 65536
    del arr
    gc.collect()
    assert daemon.wait_block_ids([]) == []
    assert our_sessions(daemon) == []


def test_a_dropped_block_is_put(daemon, conn):
    b = conn.alloc("general", 4096)
    assert daemon.block_ids() == [b.id]
    del b
    gc.collect()
    assert daemon.wait_block_ids([]) == []


def test_arrays_outlive_a_killed_daemon(daemon):
    c = pmm.connect(daemon.socket)
    arr = c.alloc("general", 1 << 20).ndarray(1 << 20)
    arr[:] = 1
    os.kill(daemon.proc.pid, signal.SIGKILL)
    daemon.proc.wait()
    # The pool stays mapped in this process while the array lives: reading
    # and writing it is defined (the memory is this process's own mapping of
    # the pool's memfd), only pmm no longer accounts for it.
    arr[10] = 2
    assert int(arr.sum()) == (1 << 20) + 1
    c.close()
    assert int(arr[10]) == 2
    with pytest.raises(pmm.InvalidArgument):
        c.alloc("general", 4096)
    del arr
    gc.collect()


def test_a_fork_child_cannot_use_the_parents_session(daemon, conn):
    b = conn.alloc("general", 4096)
    arr = b.ndarray(4)
    arr[:] = [1, 2, 3, 4]
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        code = 0
        try:
            try:
                conn.alloc("general", 4096)
                code |= 1
            except pmm.InvalidArgument as e:
                code |= 0 if "fork" in str(e) else 2
            code |= 0 if arr.tolist() == [1, 2, 3, 4] else 4  # the mapping is inherited
            del arr
            try:
                b.put()
                code |= 8
            except pmm.InvalidArgument:
                pass
            conn.close()  # frees the child's copies only
        except BaseException:
            code |= 16
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    # The parent's session and block are untouched.
    assert daemon.block_ids() == [b.id]
    arr[0] = 9
    with conn.alloc("general", 4096):
        pass
    del arr
    b.put()
    assert daemon.wait_block_ids([]) == []


def test_threads_share_a_connection(daemon, conn):
    import threading
    failures = []

    def work(n):
        try:
            for i in range(40):
                with conn.alloc("general", 65536) as b:
                    b.ndarray(8)[:] = n
                    with conn.import_(b.export()) as other:
                        if np.asarray(other)[:8].tolist() != [n] * 8:
                            failures.append((n, i))
        except Exception as e:  # noqa: BLE001 - reported below
            failures.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert daemon.wait_block_ids([]) == []


def test_exiting_with_live_views_is_clean(daemon):
    # Whatever is alive when the interpreter exits (views of a put block, a
    # closed connection, an array held only by a reference cycle) goes
    # without a crash, and the daemon is left holding nothing.
    script = r"""
import sys, pmm
c = pmm.connect(sys.argv[1])
b = c.alloc("general", 1 << 20)
arr = b.ndarray(16)
b.put()
c.close()
class Cycle: pass
x = Cycle(); x.self = x
x.arr = pmm.connect(sys.argv[1]).alloc("general", 4096).ndarray(4)
x.arr[:] = 1
print("exiting", flush=True)
"""
    import subprocess
    from conftest import python_child
    child = python_child(script, daemon.socket, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = child.communicate(timeout=30)
    assert child.returncode == 0 and out == "exiting\n", err
    assert daemon.wait_block_ids([]) == []
