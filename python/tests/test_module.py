"""The module's surface: blocks as buffers and numpy arrays, sharing by
token inside one process, SysV exports, and one exception class per pmm
status carrying pmm's message."""
import threading
import os
import signal

import numpy as np
import pytest

import pmm


def test_alloc_gives_a_block_with_its_attributes(conn):
    with conn.alloc("general", 1 << 20, zero=True) as b:
        assert b.size == 1 << 20
        assert b.pool == "general"
        assert b.id > 0
        assert b.fd >= 0
        assert b.offset % 4096 == 0
        assert b.phys is None  # shmem pools have no physical addresses
        assert not b.closed
        assert "pool=general" in repr(b)
        # The fd and offset reach the same memory the buffer shows.
        np.asarray(b)[:4] = [1, 2, 3, 4]
        assert os.pread(b.fd, 4, b.offset) == bytes([1, 2, 3, 4])
    assert b.closed


def test_alloc_takes_pools_in_order(conn):
    # The first pool that can give the block gives it: a list or "a,b".
    with conn.alloc(["display", "general"], 8 << 20) as b:
        assert b.pool == "general"  # 8 MiB do not fit the 4 MiB display pool
    with conn.alloc("display,general", 4096) as b:
        assert b.pool == "display"


def test_buffer_protocol_and_numpy_arithmetic(conn):
    with conn.alloc("general", 4 * 1024 * 1024, zero=True) as b:
        m = memoryview(b)
        assert m.nbytes == b.size and not m.readonly and m.format == "B"
        frame = b.ndarray((1024, 1024), np.float32)
        assert frame.base is not None and not frame.flags.owndata
        frame[:] = np.arange(1024, dtype=np.float32)[None, :]
        frame *= 2
        frame += 1
        # Every view shows the same bytes: no copy anywhere.
        again = b.ndarray((1024, 1024), "float32")
        assert again[3, 10] == 21.0
        assert float(again.sum()) == float(1024 * (2 * (1023 * 1024 / 2) + 1024))
        raw = np.asarray(b)
        assert raw.dtype == np.uint8 and raw.shape == (b.size,)
        assert bytes(m[0:8]) == np.array([1.0, 3.0], np.float32).tobytes()
        # An offset view starts where it says.
        tail = b.ndarray(4, np.uint32, offset=b.size - 16)
        tail[:] = 7
        assert raw[-16:].tobytes() == np.full(4, 7, np.uint32).tobytes()
        del m, frame, again, raw, tail


def test_export_and_import_in_one_process(conn):
    with conn.alloc("general", 65536) as b:
        b.ndarray(16, np.uint8)[:] = 42
        token = b.export()
        assert isinstance(token, str) and len(token) == 32
        with conn.import_(token) as other:
            assert other.id == b.id
            assert np.asarray(other)[:16].tolist() == [42] * 16
        # One import was allowed: the token is spent.
        with pytest.raises(pmm.Expired, match="imported as many times"):
            conn.import_(token)


def test_export_with_imports_and_lifetime(daemon, conn):
    with conn.alloc("general", 4096) as b:
        token = b.export(max_imports=2, lifetime=30)
        first = conn.import_(token)
        second = conn.import_(token)
        first.put()
        second.put()
        token = b.export(lifetime=0.001)  # rounded up to 1 ms
        import time
        time.sleep(0.05)
        with pytest.raises((pmm.Expired, pmm.NotFound)):
            conn.import_(token)


def test_unexport_withdraws_a_token(conn):
    with conn.alloc("general", 4096) as b:
        token = b.export()
        conn.unexport(token)
        with pytest.raises(pmm.Error) as e:
            conn.import_(token)
        assert isinstance(e.value, (pmm.NotFound, pmm.Expired))
        with pytest.raises(pmm.Error):
            conn.unexport(token)


def test_sysv_export(conn):
    with conn.alloc("display", 8192) as b:
        seg = b.sysv_export()
        assert seg.shmid >= 0 and seg.size == 8192
        shmid, offset, size = seg
        assert offset == b.offset
        b.sysv_unexport()
    with conn.alloc("general", 4096) as b:
        with pytest.raises(pmm.Unsupported) as e:
            b.sysv_export()
        assert e.value.status == 9 and "sysv" in str(e.value)


def test_prefault(conn):
    with conn.alloc("general", 1 << 20) as b:
        b.prefault()


def test_exception_classes_share_a_base_and_carry_the_status():
    classes = [pmm.InvalidArgument, pmm.NoMemory, pmm.LimitExceeded, pmm.NotFound,
               pmm.PermissionDenied, pmm.NoDaemon, pmm.Disconnected, pmm.ProtocolMismatch,
               pmm.Unsupported, pmm.SystemCallFailed, pmm.Expired, pmm.AlreadyExists,
               pmm.Timeout]
    assert [c.status for c in classes] == list(range(1, 14))
    for c in classes:
        assert issubclass(c, pmm.Error) and c.status_name
    assert issubclass(pmm.InvalidArgument, ValueError)
    assert issubclass(pmm.Timeout, TimeoutError)
    assert issubclass(pmm.PermissionDenied, PermissionError)
    assert issubclass(pmm.NotFound, LookupError)


def test_daemon_refusals_raise_their_class_with_pmms_message(daemon, conn):
    with pytest.raises(pmm.NotFound, match="no pool named 'nosuchpool'"):
        conn.alloc("nosuchpool", 4096)
    with pytest.raises(pmm.NoMemory) as e:
        conn.alloc("general", 64 << 20)
    assert "general" in str(e.value)
    with pmm.connect(daemon.socket, "capped") as capped:
        with pytest.raises(pmm.LimitExceeded, match="capped"):
            capped.alloc("general", 2 << 20)
    with pytest.raises(pmm.NotFound):
        conn.import_("0" * 32)


def test_no_daemon(tmp_path):
    with pytest.raises(pmm.NoDaemon, match="is pmmd running"):
        pmm.connect(str(tmp_path / "nothing.sock"))


def test_daemon_gone_is_disconnected(daemon):
    c = pmm.connect(daemon.socket)
    b = c.alloc("general", 4096)
    daemon.stop()
    with pytest.raises(pmm.Disconnected):
        c.alloc("general", 4096)
    # put() says so too; the handle is released all the same, so a second
    # put() (a `with` block's exit after it, say) has nothing left to do.
    with pytest.raises(pmm.Disconnected, match="went away"):
        b.put()
    assert b.closed
    b.put()
    c.close()


def test_other_threads_run_while_a_call_waits(daemon):
    """The GIL is released during daemon calls: with pmmd stopped, an
    alloc waits out its timeout while this thread keeps counting."""
    c = pmm.connect(daemon.socket, timeout=1.0)
    errors = []

    def call():
        try:
            c.alloc("general", 4096)
        except pmm.Error as e:
            errors.append(e)

    os.kill(daemon.proc.pid, signal.SIGSTOP)
    try:
        t = threading.Thread(target=call)
        t.start()
        ticks = 0
        while t.is_alive():
            ticks += 1
            threading.Event().wait(0.001)
        t.join()
    finally:
        os.kill(daemon.proc.pid, signal.SIGCONT)
    assert len(errors) == 1 and isinstance(errors[0], pmm.Timeout), errors
    # ~1 s of 1 ms waits (fewer on a loaded machine); a held GIL gives 0 or 1.
    assert ticks > 20
    c.close()
