"""Every bad argument raises an error that says what was wrong and what
would be accepted, before anything reaches the daemon: TypeError for a
wrong type, pmm.InvalidArgument (a ValueError) for a wrong value."""
import numpy as np
import pytest

import pmm


@pytest.mark.parametrize("args, kwargs, error, message", [
    (("general", 0), {}, pmm.InvalidArgument, r"size must be at least 1 \(got 0\)"),
    (("general", -4096), {}, pmm.InvalidArgument, r"size must be at least 1 \(got -4096\)"),
    (("general", 1 << 64), {}, pmm.InvalidArgument, r"size must be at most 18446744073709551615"),
    (("general", 4096.0), {}, TypeError, "size must be an integer, not float"),
    (("general", "4096"), {}, TypeError, "size must be an integer, not str"),
    (("general", True), {}, TypeError, "size must be an integer, not bool"),
    (("general", None), {}, TypeError, "size must be an integer, not NoneType"),
    (("general", 4096), {"alignment": 3}, pmm.InvalidArgument,
     r"alignment must be 0 \(the default\) or a power of two \(got 3\)"),
    (("general", 4096), {"alignment": -1}, pmm.InvalidArgument, "alignment must be at least 0"),
    (("", 4096), {}, pmm.InvalidArgument, "pools must name at least one pool"),
    (([], 4096), {}, pmm.InvalidArgument, "pools must name at least one pool"),
    ((["general", 3], 4096), {}, TypeError, "pools must hold pool names"),
    ((["a,b"], 4096), {}, pmm.InvalidArgument, "one non-empty name without commas"),
    ((7, 4096), {}, TypeError, "pools must be a str, a list or tuple of str, or None, not int"),
    (("gen\0eral", 4096), {}, pmm.InvalidArgument, "must not contain a NUL"),
    # What only the daemon knows, it says: which pools there are.
    (("bad name!", 4096), {}, pmm.NotFound, "no pool named 'bad name!'; the pools are: general"),
])
def test_bad_alloc_arguments(conn, args, kwargs, error, message):
    with pytest.raises(error, match=message):
        conn.alloc(*args, **kwargs)


def test_numpy_integers_are_sizes(conn):
    with conn.alloc("general", np.uint32(8192), alignment=np.int64(4096)) as b:
        assert b.size == 8192


@pytest.mark.parametrize("kwargs, error, message", [
    ({"max_imports": 0}, pmm.InvalidArgument, r"max_imports must be at least 1 \(got 0\)"),
    ({"max_imports": 1 << 32}, pmm.InvalidArgument, "max_imports must be at most 4294967295"),
    ({"max_imports": "2"}, TypeError, "max_imports must be an integer"),
    ({"lifetime": 0}, pmm.InvalidArgument, "lifetime must be more than 0"),
    ({"lifetime": -1.5}, pmm.InvalidArgument, "lifetime must be more than 0"),
    ({"lifetime": float("nan")}, pmm.InvalidArgument, "lifetime must be more than 0"),
    ({"lifetime": 1e12}, pmm.InvalidArgument, "at most 4294967 seconds"),
    ({"lifetime": "60s"}, TypeError, "lifetime must be a number of seconds or None, not str"),
])
def test_bad_export_arguments(conn, kwargs, error, message):
    with conn.alloc("general", 4096) as b:
        with pytest.raises(error, match=message):
            b.export(**kwargs)


@pytest.mark.parametrize("token, error, message", [
    ("abc", pmm.InvalidArgument, "token must be 32 hex digits"),
    ("g" * 32, pmm.InvalidArgument, "token must be 32 hex digits"),
    ("0" * 33, pmm.InvalidArgument, "token must be 32 hex digits"),
    (b"0" * 32, TypeError, "token must be a str of 32 hex digits"),
    (None, TypeError, "token must be a str"),
])
def test_bad_tokens(conn, token, error, message):
    with pytest.raises(error, match=message):
        conn.import_(token)
    with pytest.raises(error, match=message):
        conn.unexport(token)


@pytest.mark.parametrize("args, kwargs, error, message", [
    (((1025, 1024),), {}, pmm.InvalidArgument,
     r"shape \(1025, 1024\) of uint8 needs 1049600 bytes from offset 0, but block \d+ has 1048576"),
    (((512, 512), "float64"), {}, pmm.InvalidArgument, "needs 2097152 bytes"),
    ((16,), {"offset": (1 << 20) - 8}, pmm.InvalidArgument, "8 from that offset"),
    ((16,), {"offset": (1 << 20) + 1}, pmm.InvalidArgument, "offset must be at most 1048576"),
    ((16,), {"offset": -1}, pmm.InvalidArgument, "offset must be at least 0"),
    (((-1, 4),), {}, pmm.InvalidArgument, "each shape dimension must be at least 0"),
    (((1 << 40, 1 << 40),), {}, pmm.InvalidArgument, "more than 2\\^64"),
    (("16",), {}, TypeError, "shape must be an int or a tuple of ints"),
    (((4.0, 4),), {}, TypeError, "each shape dimension must be an integer, not float"),
    ((16, "no such type"), {}, TypeError, "data type"),
])
def test_bad_ndarray_arguments(conn, args, kwargs, error, message):
    with conn.alloc("general", 1 << 20) as b:
        with pytest.raises(error, match=message):
            b.ndarray(*args, **kwargs)
        assert b.views == 0  # a refused call leaves no view behind


@pytest.mark.parametrize("kwargs, error, message", [
    ({"socket": 3}, TypeError, "socket must be a str or None, not int"),
    ({"device": b"cam"}, TypeError, "device must be a str or None, not bytes"),
    ({"timeout": 0}, pmm.InvalidArgument, "timeout must be more than 0"),
    ({"timeout": "5"}, TypeError, "timeout must be a number of seconds"),
])
def test_bad_connect_arguments(daemon, kwargs, error, message):
    kwargs.setdefault("socket", daemon.socket)
    with pytest.raises(error, match=message):
        pmm.connect(**kwargs)

