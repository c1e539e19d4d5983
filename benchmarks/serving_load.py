"""Serving under load with hostile input: threads x requests through ``predict_raw``, 10% of them fuzzed.

Exports a tiny ``av_digits_concat`` (the serving path, not the accuracy, is
under test) with the ``"av_digits"`` preset and sends it single-example
requests from several threads; about one request in ten carries a fuzzed file
(decompression bombs, truncated and random files, odd WAV headers). Prints,
in one run: requests/s, p50/p99 latency of the good and of the refused
requests, the process RSS every 1,000 requests (it must stay flat), that every
refusal was an ``InvalidArgumentError`` naming the input, and that every good
answer equals the single-threaded answer to the same request bit for bit.

Usage::

    python benchmarks/serving_load.py [--threads 8] [--requests 10000] [--fuzz 0.1]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import struct
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import mmzoo
from mmzoo import data


def _png_bomb(width, height):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    packer, row = zlib.compressobj(9), b"\0" * (width + 1)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _wav_header(rate=8000, bits=16, frames=100, tag=1):
    block = bits // 8
    return (b"RIFF" + struct.pack("<I", 36 + frames * block) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
            + struct.pack("<HHIIHH", tag, 1, rate, rate * block, block, bits) + b"data"
            + struct.pack("<I", frames * block))


def _real_requests(n):
    root = data.resolve_data_dir()
    import gzip

    with gzip.open(os.path.join(root, "mnist", "t10k-images-idx3-ubyte.gz"), "rb") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    folder = os.path.join(root, "fsdd", "recordings")
    wavs = sorted(os.listdir(folder))[:n]
    return [{"image": [tf.io.encode_png(images[i][..., None]).numpy()],
             "audio": [open(os.path.join(folder, w), "rb").read()]} for i, w in enumerate(wavs)]


def _fuzzed(good, rng, bomb):
    png, wav = good["image"][0], good["audio"][0]
    noise = rng.bytes(1000)
    bad_images = [png[: len(png) // 2], noise, b"\x89PNG\r\n\x1a\n" + noise] + ([bomb] if bomb else [])
    bad_audio = [b"RIFF\x24\x00\x00\x00WAVE" + bytes(range(255, -1, -1)), wav[: len(wav) // 3],
                 _wav_header(rate=1) + noise[:200], _wav_header(frames=0), _wav_header(bits=12) + noise[:200]]
    if rng.rand() < 0.5:
        return "image", {"image": [bad_images[rng.randint(len(bad_images))]], "audio": [wav]}
    return "audio", {"image": [png], "audio": [bad_audio[rng.randint(len(bad_audio))]]}


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--fuzz", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-bombs", action="store_true", help="leave decompression bombs out of the fuzz")
    args = parser.parse_args()

    keras.utils.set_random_seed(args.seed)
    folder = tempfile.mkdtemp(prefix="mmzoo_load_")
    path = mmzoo.export(mmzoo.zoo.build_tiny("av_digits_concat"), os.path.join(folder, "model"),
                        preprocessing="av_digits")
    served = mmzoo.load(path)
    pool = _real_requests(200)
    reference = [served.predict_raw(r)["probabilities"] for r in pool]  # single-threaded answers
    rng = np.random.RandomState(args.seed)
    bomb = None if args.no_bombs else _png_bomb(20000, 20000)  # 400 megapixels in about 400 KB
    plan = []
    for _ in range(args.requests):
        i = rng.randint(len(pool))
        plan.append((i, *_fuzzed(pool[i], rng, bomb)) if rng.rand() < args.fuzz else (i, None, pool[i]))

    lock = threading.Lock()
    stats = {"good": [], "refused": [], "mismatch": 0, "wrong_error": [], "served_bad": 0, "rss": [], "done": 0}

    def one(item):
        i, bad_input, request = item
        start = time.perf_counter()
        try:
            out = served.predict_raw(request)["probabilities"]
            error = None
        except Exception as caught:  # keep the type and message only: a stored exception would hold this frame
            out, error = None, (type(caught), str(caught))
        seconds = time.perf_counter() - start
        with lock:
            if bad_input is None:
                stats["good"].append(seconds)
                if error is not None or not np.array_equal(out, reference[i]):
                    stats["mismatch"] += 1
            elif error is None:
                stats["served_bad"] += 1
            else:
                stats["refused"].append(seconds)
                if not issubclass(error[0], tf.errors.InvalidArgumentError) or f"`{bad_input}`" not in error[1]:
                    stats["wrong_error"].append(f"{error[0].__name__}: {error[1][:120]}")
            stats["done"] += 1
            if stats["done"] % 1000 == 0:
                stats["rss"].append(round(_rss_mb()))

    rss_start = _rss_mb()
    start = time.perf_counter()
    with ThreadPoolExecutor(args.threads) as executor:
        list(executor.map(one, plan))
    seconds = time.perf_counter() - start

    def pct(values, q):
        return 1e3 * float(np.percentile(values, q)) if values else float("nan")

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; TensorFlow {tf.__version__}; "
          f"{args.threads} threads x {args.requests} requests, {args.fuzz:.0%} fuzzed")
    print(f"requests/s: {args.requests / seconds:.0f} ({seconds:.1f} s)")
    print(f"good: {len(stats['good'])}, p50 {pct(stats['good'], 50):.1f} ms, p99 {pct(stats['good'], 99):.1f} ms; "
          f"not bit-identical to single-threaded: {stats['mismatch']}")
    print(f"refused: {len(stats['refused'])}, p50 {pct(stats['refused'], 50):.1f} ms, "
          f"p99 {pct(stats['refused'], 99):.1f} ms; served although bad: {stats['served_bad']}; "
          f"refused without a named InvalidArgumentError: {len(stats['wrong_error'])}")
    for line in stats["wrong_error"][:5]:
        print(f"  {line}")
    print(f"RSS MB: start {rss_start:.0f}, every 1,000 requests: {stats['rss']}")
    ok = not (stats["mismatch"] or stats["served_bad"] or stats["wrong_error"])
    print("contract held" if ok else "CONTRACT BROKEN")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
