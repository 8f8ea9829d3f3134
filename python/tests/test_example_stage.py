"""examples/python/pmm_frame_stats.py, the Python stage of the example
pipeline: it imports pmm-jpegdec's frame by token and reports statistics of
exactly the pixels the decoder wrote (checked against the copying baseline's
decode of the same JPEG), and writes them as a PNG."""
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

from conftest import Daemon

SOURCE = os.environ.get("PMM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
STAGE = os.path.join(SOURCE, "examples", "python", "pmm_frame_stats.py")
JPEG = os.path.join(SOURCE, "examples", "data", "testcard-3840x2160.jpg")
JPEGDEC = os.environ.get("PMM_JPEGDEC")
BASELINE = os.environ.get("PMM_BASELINE_JPEGDEC")

pytestmark = pytest.mark.skipif(not JPEGDEC or not BASELINE,
                                reason="the examples are not built (PMM_BUILD_EXAMPLES=OFF)")


def reference_pixels():
    """The same JPEG decoded by baseline-jpegdec: its pixels come on stdout."""
    out = subprocess.run([BASELINE, JPEG], capture_output=True, check=True, timeout=60).stdout
    line, _, body = out.partition(b"\n")
    fields = dict(w.split("=") for w in line.decode().split()[1:])
    w, h, stride = int(fields["width"]), int(fields["height"]), int(fields["stride"])
    return np.frombuffer(body, np.uint8).reshape(h, stride)[:, :w * 4].reshape(h, w, 4)


def read_png_rgb(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == struct.unpack(
            ">I", data[pos + 8 + length:pos + 12 + length])[0]
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    w, h = size
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, w * 3 + 1)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].reshape(h, w, 3)


def test_stage_reads_the_decoders_frame(tmp_path):
    daemon = Daemon(tmp_path, config='[pools.general]\ntype = "shmem"\nsize = "64MiB"\n')
    try:
        env = dict(os.environ, PMM_SOCKET=daemon.socket)
        png = tmp_path / "frame.png"
        decoder = subprocess.Popen([JPEGDEC, JPEG], stdout=subprocess.PIPE, env=env)
        stage = subprocess.run([sys.executable, STAGE, "--png", str(png)], stdin=decoder.stdout,
                               capture_output=True, text=True, env=env, timeout=60)
        decoder.stdout.close()
        assert decoder.wait(timeout=60) == 0
        assert stage.returncode == 0, stage.stderr
        words = stage.stdout.split()
        assert words[0] == "frame-stats"
        got = dict(w.split("=") for w in words[1:])

        pixels = reference_pixels()
        assert (int(got["width"]), int(got["height"])) == (3840, 2160)
        for name, index in (("r", 2), ("g", 1), ("b", 0)):
            channel = pixels[:, :, index]
            assert float(got[f"mean_{name}"]) == pytest.approx(channel.mean(), abs=1e-3)
            assert int(got[f"min_{name}"]) == channel.min()
            assert int(got[f"max_{name}"]) == channel.max()
        rgb = read_png_rgb(png)
        assert (rgb == pixels[:, :, [2, 1, 0]]).all()
        # The stage put the frame: the decoder's export was its last holder.
        assert daemon.wait_block_ids([]) == []
    finally:
        daemon.stop()


def test_stage_explains_bad_input(tmp_path):
    daemon = Daemon(tmp_path)
    try:
        env = dict(os.environ, PMM_SOCKET=daemon.socket)
        cases = [
            ([], "not a frame line\n", "expected a 'pmm-frame ...' line"),
            ([], "pmm-frame width=4 height=4\n", "the frame line lacks token"),
            (["0" * 32, "64x64"], "", "not found"),
            (["abc", "64x64"], "", "token must be 32 hex digits"),
            (["0" * 32], "", "a token needs its size"),
        ]
        for args, stdin, message in cases:
            r = subprocess.run([sys.executable, STAGE, *args], input=stdin, capture_output=True,
                               text=True, env=env, timeout=30)
            assert r.returncode == 1 and message in r.stderr, (args, r.stderr)
    finally:
        daemon.stop()
