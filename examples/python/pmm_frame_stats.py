#!/usr/bin/python3
"""pmm-frame-stats: a Python stage of the example pipeline.

Imports the frame another stage exported (pmm-jpegdec, pmm-scale), looks at
it as a numpy array over the pmm block itself (no copy), prints statistics
of each channel and, with --png, writes the frame as a PNG (numpy, zlib and
struct only).

  pmm-jpegdec examples/data/testcard-3840x2160.jpg | pmm_frame_stats.py --png card.png
  pmm-jpegdec card.jpg | pmm-scale --to 640x360 | pmm_frame_stats.py
  pmm_frame_stats.py TOKEN 3840x2160 [--stride 15360]

The frame line on stdin (examples/README.md, "How a frame travels") is

  pmm-frame token=... width=3840 height=2160 stride=15360 format=BGRX

and on stdout comes one line, keys in any order like the frame line's:

  frame-stats width=3840 height=2160 mean_r=... mean_g=... mean_b=... min_r=... max_r=... ...

Run it with the pmm module importable: PYTHONPATH=build/release/python, or
after `cmake --install`. The socket is $PMM_SOCKET's, as for every stage.
"""
import argparse
import struct
import sys
import zlib

import numpy as np

import pmm



def parse_frame_line(line):
    """The fields of a pmm-frame line; unknown keys are ignored."""
    words = line.split()
    if not words or words[0] != "pmm-frame":
        raise ValueError(f"expected a 'pmm-frame ...' line, got {line.strip()[:80]!r}")
    fields = dict(w.split("=", 1) for w in words[1:] if "=" in w)
    missing = [k for k in ("token", "width", "height") if k not in fields]
    if missing:
        raise ValueError(f"the frame line lacks {', '.join(missing)}: {line.strip()[:80]!r}")
    return fields


def frame_view(block, width, height, stride):
    """height x width x 4 uint8 array over the block (rows `stride` apart)."""
    if stride < width * 4 or stride % 4:
        raise ValueError(f"stride {stride} must be a multiple of 4 and at least width*4 "
                         f"({width * 4})")
    rows = block.ndarray((height, stride), np.uint8)  # raises if the block is too small
    return rows[:, :width * 4].reshape(height, width, 4)


def stats(pixels):
    out = {}
    for name, index in (("r", 2), ("g", 1), ("b", 0)):
        channel = pixels[:, :, index]
        out[f"mean_{name}"] = f"{float(channel.mean(dtype=np.float64)):.3f}"
        out[f"min_{name}"] = int(channel.min())
        out[f"max_{name}"] = int(channel.max())
    # Rec. 601 luma, the usual single "brightness" number of a frame.
    luma = pixels[:, :, 2] * 0.299 + pixels[:, :, 1] * 0.587 + pixels[:, :, 0] * 0.114
    out["mean_luma"] = f"{float(luma.mean()):.3f}"
    return out


def png_bytes(pixels):
    """An 8-bit RGB PNG of a height x width x 4 BGRX array."""
    height, width = pixels.shape[:2]
    rgb = np.empty((height, width * 3 + 1), np.uint8)
    rgb[:, 0] = 0  # filter type None on every row
    body = rgb[:, 1:].reshape(height, width, 3)
    body[..., 0] = pixels[..., 2]
    body[..., 1] = pixels[..., 1]
    body[..., 2] = pixels[..., 0]

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) +
            chunk(b"IDAT", zlib.compress(rgb.tobytes(), 1)) + chunk(b"IEND", b""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("token", nargs="?", help="export token (else a frame line on stdin)")
    parser.add_argument("size", nargs="?", help="WxH, with a token")
    parser.add_argument("--stride", type=int, help="bytes per row (default: width*4 rounded "
                        "up to 64)")
    parser.add_argument("--png", help="write the frame to this PNG file")
    parser.add_argument("--device", default="stats", help="pmm device name")
    args = parser.parse_args()

    try:
        if args.token:
            if not args.size or "x" not in args.size:
                raise ValueError("a token needs its size: TOKEN WxH")
            width, height = (int(v) for v in args.size.split("x", 1))
            token = args.token
            stride = args.stride or (width * 4 + 63) // 64 * 64
        else:
            fields = parse_frame_line(sys.stdin.readline())
            if fields.get("format", "BGRX") != "BGRX":
                raise ValueError(f"format {fields['format']} is not BGRX, the only one spoken")
            token, width, height = fields["token"], int(fields["width"]), int(fields["height"])
            stride = int(fields.get("stride", (width * 4 + 63) // 64 * 64))
        if width <= 0 or height <= 0:
            raise ValueError(f"size {width}x{height} must be positive")

        with pmm.connect(device=args.device) as conn, conn.import_(token) as block:
            pixels = frame_view(block, width, height, stride)
            line = {"width": width, "height": height, "block": block.id, **stats(pixels)}
            if args.png:
                with open(args.png, "wb") as f:
                    f.write(png_bytes(pixels))
            del pixels  # the last view goes before the block is put
    except (ValueError, pmm.Error) as e:
        print(f"pmm-frame-stats: {e}", file=sys.stderr)
        return 1
    print("frame-stats " + " ".join(f"{k}={v}" for k, v in line.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
