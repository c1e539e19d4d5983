"""Serving latency and throughput of an exported AV-digits model.

Trains ``av_digits_concat`` briefly on the embedded AV-digits data, exports
it with ``preprocessing="av_digits"`` and converts it to TFLite, then prints,
in one run:

* ``serving_default`` (numeric tensors) and ``serving_raw`` (PNG + WAV bytes
  built from the embedded test split): latency p50/p95 at batch 1 and
  throughput at batch 64, and the raw/tensor ratio (target: raw within 2x of
  tensor serving at batch 64);
* the TFLite model (float32 and int8; batch 1 files, so batch 64 is 64
  invocations): the same figures, file size and test accuracy.

Usage::

    python benchmarks/serving.py [--epochs 3] [--calls 200] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import mmzoo
from mmzoo.datasets import av_digits_recipe as av_digits
from mmzoo.serving import tflite

BATCH = 64


def encode_raw(inputs):
    """PNG bytes of the images and 16-bit WAV bytes of the waveforms (8 kHz)."""
    images = np.round(np.clip(inputs["image"], 0, 1) * 255).astype(np.uint8)
    pngs = [tf.io.encode_png(image).numpy() for image in images]
    audio = np.clip(inputs["audio"], -1, 32767 / 32768)
    wavs = [tf.audio.encode_wav(a[:, None], av_digits.SAMPLE_RATE).numpy() for a in audio]
    return {"image": pngs, "audio": wavs}


def _timed(fn, calls):
    fn()  # warm-up: first call runs function initialisation
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return np.asarray(times)


def measure(call_with, batch1, batch64, calls):
    """``{"p50_ms", "p95_ms", "examples_per_s"}`` of ``call_with(inputs)``."""
    one = _timed(lambda: call_with(batch1), calls) * 1e3
    many = _timed(lambda: call_with(batch64), max(10, calls // 10))
    return {"p50_ms": float(np.percentile(one, 50)), "p95_ms": float(np.percentile(one, 95)),
            "examples_per_s": BATCH / float(np.median(many))}


def _row(name, m, extra=""):
    print(f"{name:28s} {m['p50_ms']:9.2f} {m['p95_ms']:9.2f} {m['examples_per_s']:14.0f}  {extra}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (default: %(default)s)")
    parser.add_argument("--calls", type=int, default=200, help="timed batch-1 calls (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="TFLite interpreter threads (default: TF's)")
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(0)
    arrays = av_digits.load_arrays()
    (x_train, y_train), (x_test, y_test) = arrays["train"], arrays["test"]
    model = mmzoo.build("av_digits_concat")
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=32, verbose=0)
    accuracy = float(np.mean(np.argmax(model.predict(x_test, verbose=0), -1) == y_test))
    print(f"av_digits_concat, {args.epochs} epochs: float test accuracy {accuracy:.3f}; "
          f"{os.cpu_count()} CPU cores, TF {tf.__version__}")

    raw = encode_raw({k: v[:BATCH] for k, v in x_test.items()})
    with tempfile.TemporaryDirectory() as tmp:
        path = mmzoo.export(model, os.path.join(tmp, "av_digits"), preprocessing="av_digits")
        served = tf.saved_model.load(path)
        tensor_fn, raw_fn = served.signatures["serving_default"], served.signatures["serving_raw"]
        numeric = {k: tf.constant(v[:BATCH]) for k, v in x_test.items()}
        raw_t = {k: tf.constant(v, tf.string) for k, v in raw.items()}

        print(f"\n{'endpoint':28s} {'p50 ms':>9s} {'p95 ms':>9s} {'examples/s@64':>14s}")
        print(f"{'':28s} {'(batch 1)':>9s} {'(batch 1)':>9s}")
        tensor = measure(lambda x: tensor_fn(**x), {k: v[:1] for k, v in numeric.items()}, numeric, args.calls)
        _row("serving_default (tensors)", tensor)
        raw_m = measure(lambda x: raw_fn(**x), {k: v[:1] for k, v in raw_t.items()}, raw_t, args.calls)
        _row("serving_raw (PNG + WAV)", raw_m)
        ratio = tensor["examples_per_s"] / raw_m["examples_per_s"]
        print(f"raw/tensor time ratio at batch 64: {ratio:.2f}x (target <= 2x: {'met' if ratio <= 2 else 'NOT met'}); "
              f"batch-1 p50 ratio {raw_m['p50_ms'] / tensor['p50_ms']:.2f}x")

        x_np = {k: v[:BATCH] for k, v in x_test.items()}
        for quantize in (None, "dynamic", "int8"):
            try:
                file = tflite.export_tflite(model, os.path.join(tmp, f"av.{quantize or 'float32'}.tflite"),
                                            quantize=quantize, representative_data=x_train)
            except ValueError as error:  # int8 refuses the level-normalised audio front end (see tflite.py)
                print(f"tflite {quantize}: refused: {str(error).splitlines()[0][:100]}")
                continue
            lite = tflite.TFLiteModel(file, num_threads=args.threads)
            m = measure(lite.predict, {k: v[:1] for k, v in x_np.items()}, x_np, args.calls)
            report = tflite.compare_with_float(model, file, x_test, y_test)
            _row(f"tflite {quantize or 'float32'}", m,
                 f"{report['size_bytes'] / 1024:.0f} KiB, accuracy {report['tflite_accuracy']:.3f} "
                 f"({report['accuracy_change']:+.1f} pts), "
                 f"vs tensor serving {tensor['examples_per_s'] / m['examples_per_s']:.2f}x")


if __name__ == "__main__":
    main()
