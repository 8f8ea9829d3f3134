#!/usr/bin/python3
"""Benchmark: handing a frame from one Python process to another.

Side by side, in one run, for an 8 MiB and a 64 MiB frame of bytes:

  pmm                  the producer allocates a block, fills it, exports it
                       and sends the token (32 characters) over a
                       multiprocessing.Queue; the consumer imports it and
                       reads it through a numpy array over the block.
  shm, new segment     multiprocessing.shared_memory: a new segment per frame,
                       its name sent over the Queue, attached by the consumer,
                       unlinked by the producer afterwards.
  shm, reused segment  one segment made once and attached once, refilled per
                       frame (the best case for shared_memory: the pipeline
                       then has to recycle buffers and know when the consumer
                       is done itself; here one frame is in flight at a time).
  Queue (pickle)       the numpy array itself put on a multiprocessing.Queue:
                       pickled, written through a pipe, unpickled.

One frame is in flight at a time: the producer fills a frame (not timed),
notes the time and hands it on; the consumer notes when it holds a numpy
array of the frame ("hand-off") and when it has read every byte of it
(a sum over uint64 words: "read"). Both clocks are CLOCK_MONOTONIC
(time.perf_counter_ns), the same for both processes. Medians of the frames.

  PYTHONPATH=build/release/python /usr/bin/python3 python/bench_share.py \\
      --pmmd build/release/src/daemon/pmmd

--pmmd starts a private daemon (built-in config: a 256 MiB shmem pool
"general") on a temporary socket; without it the running daemon is used.
"""
import argparse
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing import shared_memory

import numpy as np

MiB = 1 << 20


def now():
    return time.perf_counter_ns()


def read_all(arr):
    return int(arr.view(np.uint64).sum(dtype=np.uint64))


# ---- consumers: each gets (handle, t0) messages and answers (hand-off, read)

def consume_pmm(sock, frames, q, results):
    import pmm
    with pmm.connect(sock, "bench-consumer") as conn:
        for _ in range(frames):
            token, t0 = q.get()
            with conn.import_(token) as b:
                arr = b.ndarray(b.size)
                t1 = now()
                read_all(arr)
                t2 = now()
                del arr
            results.put((t1 - t0, t2 - t0))


def attach(name):
    # Attaching registers the segment with the resource tracker (Python <
    # 3.13), which would unlink it at exit; spawned children share their
    # parent's tracker, though, so the producer's unlink() settles it.
    return shared_memory.SharedMemory(name=name)


def consume_shm_new(size, frames, q, results):
    for _ in range(frames):
        name, t0 = q.get()
        s = attach(name)
        arr = np.ndarray(size, np.uint8, buffer=s.buf)
        t1 = now()
        read_all(arr)
        t2 = now()
        del arr
        s.close()
        results.put((t1 - t0, t2 - t0))


def consume_shm_reused(size, frames, q, results):
    s = None
    for _ in range(frames):
        name, t0 = q.get()
        if s is None:
            s = attach(name)
        arr = np.ndarray(size, np.uint8, buffer=s.buf)
        t1 = now()
        read_all(arr)
        t2 = now()
        del arr
        results.put((t1 - t0, t2 - t0))
    s.close()


def consume_pickle(size, frames, q, results):
    for _ in range(frames):
        arr, t0 = q.get()
        t1 = now()
        read_all(arr)
        t2 = now()
        results.put((t1 - t0, t2 - t0))


# ---- producers, in the parent

def produce_pmm(sock, size, frames, q, results):
    import pmm
    out = []
    with pmm.connect(sock, "bench-producer") as conn:
        for i in range(frames):
            with conn.alloc("general", size) as b:
                b.ndarray(size)[:] = i
                t0 = now()
                q.put((b.export(), t0))
            out.append(results.get())
    return out


def produce_shm_new(size, frames, q, results):
    out = []
    for i in range(frames):
        s = shared_memory.SharedMemory(create=True, size=size)
        np.ndarray(size, np.uint8, buffer=s.buf)[:] = i
        t0 = now()
        q.put((s.name, t0))
        out.append(results.get())
        s.close()
        s.unlink()
    return out


def produce_shm_reused(size, frames, q, results):
    out = []
    s = shared_memory.SharedMemory(create=True, size=size)
    try:
        arr = np.ndarray(size, np.uint8, buffer=s.buf)
        for i in range(frames):
            arr[:] = i
            t0 = now()
            q.put((s.name, t0))
            out.append(results.get())
        del arr
    finally:
        s.close()
        s.unlink()
    return out


def produce_pickle(size, frames, q, results):
    out = []
    arr = np.empty(size, np.uint8)
    for i in range(frames):
        arr[:] = i
        t0 = now()
        q.put((arr, t0))
        out.append(results.get())
    return out


METHODS = [
    ("pmm (token over a Queue)", produce_pmm, consume_pmm, True),
    ("shm, new segment per frame", produce_shm_new, consume_shm_new, False),
    ("shm, one segment reused", produce_shm_reused, consume_shm_reused, False),
    ("Queue (pickled ndarray)", produce_pickle, consume_pickle, False),
]


def run(method, size, frames, sock):
    name, produce, consume, uses_pmm = method
    ctx = mp.get_context("spawn")  # a fresh interpreter, as a separate stage would be
    q, results = ctx.Queue(), ctx.Queue()
    args = (sock, frames, q, results) if uses_pmm else (size, frames, q, results)
    child = ctx.Process(target=consume, args=args)
    child.start()
    try:
        timings = (produce(sock, size, frames, q, results) if uses_pmm
                   else produce(size, frames, q, results))
    finally:
        child.join(60)
    if child.exitcode != 0:
        raise SystemExit(f"bench_share: the {name} consumer failed ({child.exitcode})")
    return [t[0] / 1e6 for t in timings], [t[1] / 1e6 for t in timings]


def start_pmmd(pmmd, directory):
    sock = os.path.join(directory, "pmm.sock")
    proc = subprocess.Popen([pmmd, "--socket", sock], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            s.connect(sock)
            return proc, sock
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench_share: {pmmd} did not start")
            time.sleep(0.01)
        finally:
            s.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pmmd", help="start this pmmd on a private socket for the run")
    parser.add_argument("--socket", help="the running daemon's socket (default: $PMM_SOCKET...)")
    parser.add_argument("--frames", type=int, default=30, help="frames per size and method "
                        "(64 MiB frames: a third of it)")
    args = parser.parse_args()

    directory = tempfile.mkdtemp(prefix="pmm-bench-")
    daemon, sock = start_pmmd(args.pmmd, directory) if args.pmmd else (None, args.socket)
    rows = []
    try:
        for size, frames in ((8 * MiB, args.frames), (64 * MiB, max(3, args.frames // 3))):
            for method in METHODS:
                handoff, read = run(method, size, frames, sock)
                rows.append((f"{size // MiB} MiB", method[0], frames,
                             statistics.median(handoff), statistics.median(read)))
    finally:
        if daemon:
            daemon.terminate()
            daemon.wait()
        shutil.rmtree(directory, ignore_errors=True)

    print(f"Python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs; "
          "median ms from the producer's hand-off")
    header = ("frame", "method", "frames", "consumer has it", "consumer has read it")
    table = [header] + [(r[0], r[1], str(r[2]), f"{r[3]:.3f}", f"{r[4]:.3f}") for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in table[1:]:
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1])] + [
            c.rjust(w) for c, w in zip(r[2:], widths[2:])]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
