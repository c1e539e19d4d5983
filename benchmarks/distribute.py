"""Training throughput of a zoo model under strategies, XLA and precision policies.

Usage: python benchmarks/distribute.py [--model av_digits_concat] [--epochs 3] [--batch-size 64]

In one run, on this machine: training examples/s of the model on the embedded
AV-digits train split (1,000 examples) for the default strategy, a
MirroredStrategy over 2 logical CPU devices, XLA off/on, and float32 vs
mixed_bfloat16 (and mixed_float16 on a GPU). One warm-up epoch (tracing, XLA
compilation) is excluded; the figure is examples / seconds over ``--epochs``.
Ratios are against the default strategy in float32 without XLA.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

import mmzoo  # noqa: E402
from mmzoo.training import distribute  # noqa: E402


def throughput(model_name, strategy, precision, jit_compile, epochs, batch_size):
    """Returns training examples/s after one warm-up epoch."""
    keras.utils.set_random_seed(0)
    train_ds, _ = mmzoo.datasets.av_digits(batch_size=batch_size, drop_remainder=True)
    train_ds = train_ds.cache()
    examples = int(train_ds.cardinality()) * batch_size
    with distribute.precision_policy(precision), strategy.scope():
        model = mmzoo.build(model_name, jit_compile=jit_compile)
        model.fit(train_ds, epochs=1, verbose=0)  # warm-up: tracing and compilation
        start = time.perf_counter()
        model.fit(train_ds, epochs=epochs, verbose=0)
        seconds = time.perf_counter() - start
    return examples * epochs / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="av_digits_concat")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in gpus] or ["/cpu:0", "/cpu:1"]
    runs = [
        ("default, float32", tf.distribute.get_strategy(), "float32", False),
        ("default, float32, XLA", tf.distribute.get_strategy(), "float32", True),
        ("default, mixed_bfloat16", tf.distribute.get_strategy(), "mixed_bfloat16", False),
        ("default, mixed_bfloat16, XLA", tf.distribute.get_strategy(), "mixed_bfloat16", True),
        (f"mirrored over {len(devices)} devices, float32", tf.distribute.MirroredStrategy(devices), "float32", False),
    ]
    if gpus:
        runs.append(("default, mixed_float16, XLA", tf.distribute.get_strategy(), "mixed_float16", True))
    print(f"{args.model}, batch {args.batch_size}, devices: {[d.name for d in tf.config.list_logical_devices()]}")
    base = None
    for label, strategy, precision, jit in runs:
        rate = throughput(args.model, strategy, precision, jit, args.epochs, args.batch_size)
        base = base or rate
        print(f"{label:40s} {rate:8.0f} examples/s   x{rate / base:.2f}", flush=True)


if __name__ == "__main__":
    main()
