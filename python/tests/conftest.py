"""Fixtures for the pmm module's tests: a real pmmd on a private socket.

CTest (python/tests/CMakeLists.txt) runs these files with Debian's
/usr/bin/python3 and sets PYTHONPATH to the module in the build tree, PMM_PMMD
and PMM_PMMCTL to the built daemon and tool, PMM_SOURCE_DIR to the source
tree, and PMM_JPEGDEC to pmm-jpegdec when the examples are built.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

# The config most tests use: a shmem pool and a sysv pool, small enough to
# fill, and a device with a budget for the LimitExceeded case.
CONFIG = """
[pools.general]
type = "shmem"
size = "32MiB"

[pools.display]
type = "sysv"
size = "4MiB"

[devices.capped]
max = "1MiB"
"""


def _socket_answers(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


class Daemon:
    """pmmd as a child process; `pmmctl(...)` asks it with --json."""

    def __init__(self, directory, config=CONFIG):
        self.dir = str(directory)
        self.socket = os.path.join(self.dir, "pmm.sock")
        config_path = os.path.join(self.dir, "pmmd.toml")
        with open(config_path, "w") as f:
            f.write(config)
        self.log_path = os.path.join(self.dir, "pmmd.log")
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [os.environ["PMM_PMMD"], "--socket", self.socket, "--config", config_path],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + 10
        while not _socket_answers(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("pmmd did not start: " + self.log())
            time.sleep(0.01)

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def pmmctl(self, *args):
        out = subprocess.run([os.environ["PMM_PMMCTL"], "--socket", self.socket, "--json", *args],
                             capture_output=True, text=True, timeout=30, check=True)
        return json.loads(out.stdout)

    def block_ids(self):
        return sorted(b["id"] for b in self.pmmctl("blocks"))

    def wait_block_ids(self, expected, timeout=5.0):
        """Block ids once they equal `expected` (the daemon sees a death or a
        put on its own schedule), else the last listing."""
        deadline = time.monotonic() + timeout
        while True:
            ids = self.block_ids()
            if ids == sorted(expected) or time.monotonic() > deadline:
                return ids
            time.sleep(0.02)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture
def daemon(tmp_path):
    d = Daemon(tmp_path)
    yield d
    d.stop()


@pytest.fixture
def conn(daemon):
    import pmm
    with pmm.connect(daemon.socket, "pytest") as c:
        yield c


def python_child(code, *args, **popen_args):
    """Another Debian Python process running `code`, with this one's
    PYTHONPATH (so it imports the same pmm module)."""
    return subprocess.Popen([sys.executable, "-c", code, *args], text=True, **popen_args)
