"""python/compare_shared_memory.py, run as its docstring says: after a
SIGKILL of the holder's process group a multiprocessing.shared_memory
segment stays in /dev/shm, while pmm leaves nothing, either way."""
import json
import os
import subprocess
import sys

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "compare_shared_memory.py")


def test_comparison_script():
    out = subprocess.run(
        [sys.executable, SCRIPT, "--pmmd", os.environ["PMM_PMMD"], "--pmmctl",
         os.environ["PMM_PMMCTL"], "--size", str(1 << 20), "--json"],
        capture_output=True, text=True, timeout=60, check=True)
    result = json.loads(out.stdout)
    cases = {c["kill"]: c for c in result["cases"]}
    # pmm: nothing left, however the holder died.
    assert cases["process"]["pmm_blocks_left"] == []
    assert cases["group"]["pmm_blocks_left"] == []
    # shared_memory: cleaned up only by a tracker process that outlived the
    # holder, with a warning; killed with it, the segment stays.
    assert cases["process"]["shared_memory_left"] == []
    assert cases["process"]["resource_tracker_warning"]
    leaked = cases["group"]["shared_memory_left"]
    assert len(leaked) == 1 and leaked[0].startswith("/dev/shm/psm_")
    # The script unlinked what it leaked (no --keep).
    assert not os.path.exists(leaked[0])


def test_comparison_table(daemon):
    # The human form, against an already running daemon (--socket).
    out = subprocess.run(
        [sys.executable, SCRIPT, "--socket", daemon.socket, "--pmmctl",
         os.environ["PMM_PMMCTL"], "--size", str(1 << 20)],
        capture_output=True, text=True, timeout=60, check=True)
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["after", "SIGKILL", "of", "multiprocessing.shared_memory", "pmm"]
    assert "LEFT BEHIND: /dev/shm/psm_" in lines[2] and "freed by pmmd" in lines[2]
    assert "freed by pmmd" in lines[1]
    assert daemon.block_ids() == []
