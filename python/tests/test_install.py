"""`cmake --install` puts the module where Debian's Python finds it under
the prefix (PMM_PYTHON_INSTALL_DIR, lib/python3.X/dist-packages for
/usr/local), and the installed module works on its own against the
installed pmmd: it carries libpmm inside, so it needs no rpath."""
import glob
import os
import subprocess
import sys
import time

import pytest

BUILD = os.environ.get("PMM_BINARY_DIR")
CMAKE = os.environ.get("PMM_CMAKE", "cmake")
INSTALL_DIR = os.environ.get("PMM_PYTHON_INSTALL_DIR")

pytestmark = pytest.mark.skipif(not BUILD or not INSTALL_DIR, reason="run by ctest")

USE = r"""
import sys, pmm
assert pmm.__file__.startswith(sys.argv[1]), pmm.__file__
with pmm.connect(sys.argv[2]) as c, c.alloc("general", 1 << 20) as b:
    b.ndarray(4)[:] = 1
    print("installed", b.size, b.pool)
"""


def test_installed_module_imports_and_works(tmp_path):
    prefix = tmp_path / "prefix"
    subprocess.run([CMAKE, "--install", BUILD, "--prefix", str(prefix)], check=True,
                   stdout=subprocess.DEVNULL, timeout=120)
    site = prefix / INSTALL_DIR
    modules = glob.glob(str(site / "pmm.cpython-*.so"))
    assert len(modules) == 1, os.listdir(site)
    sock = str(tmp_path / "pmm.sock")
    daemon = subprocess.Popen([str(prefix / "bin" / "pmmd"), "--socket", sock],
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["PYTHONPATH"] = str(site)
        out = subprocess.run([sys.executable, "-c", USE, str(site), sock], env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["installed", str(1 << 20), "general"]
    finally:
        daemon.terminate()
        daemon.wait()
