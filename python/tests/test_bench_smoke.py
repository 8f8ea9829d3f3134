"""python/bench_share.py still runs and prints its table (3 frames a size;
the numbers for BENCHMARKS.md come from a full run, never asserted here)."""
import os
import subprocess
import sys

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "bench_share.py")


def test_benchmark_prints_its_table():
    out = subprocess.run([sys.executable, SCRIPT, "--pmmd", os.environ["PMM_PMMD"],
                          "--frames", "3"], capture_output=True, text=True, timeout=100)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # no resource_tracker complaints either
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ")][1:]
    methods = [r.split("|")[2].strip() for r in rows]
    assert methods == ["pmm (token over a Queue)", "shm, new segment per frame",
                       "shm, one segment reused", "Queue (pickled ndarray)"] * 2
    for r in rows:
        assert float(r.split("|")[5]) > 0
