"""Training throughput of the default AV-digits model: mmzoo settings against the previous default and plain Keras.

Trains on the embedded AV-digits data (the ``mmzoo train`` task) and prints,
in one run, for each configuration: training examples/s (after a warm-up
epoch, so tracing and compilation are not counted), test accuracy after
``--epochs`` epochs (mean and min-max over ``--seeds`` seeds) and the ratio
of its examples/s to the previous default (``av_digits_concat`` with the
audio CNN at filters (32, 64), batch 32, float32, XLA off, one step per
call), the baseline of issue 15:

* ``before: audio 32-64``: that baseline;
* ``default (audio 16-32)``: today's default, the audio CNN at half width
  (its second convolution was two thirds of the model's multiply-adds);
* on top of it: ``cached front end`` (the log-mel front end computed once in
  ``tf.data`` and cached, ``mmzoo.training.frontend``; the model keeps it
  for serving), ``batch 64``, ``steps_per_execution 8``, ``mixed_bfloat16``,
  ``XLA``, and ``auto + spe 8`` (``precision="auto"`` with 8 steps per call);
* ``audio 8-16``, ``image 16-32``: narrower still;
* ``plain Keras``: today's default architecture written by hand
  (``keras.layers`` only), trained the same way: the abstraction tax (target:
  mmzoo at >= 0.95x).

Usage::

    python benchmarks/throughput.py [--epochs 5] [--seeds 3] [--only 'default (audio 16-32),plain Keras']
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import mmzoo
from mmzoo.datasets import av_digits_recipe as data
from mmzoo.training import distribute, frontend
from mmzoo.zoo.av_digits import AUDIO_FILTERS


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@keras.saving.register_keras_serializable(package="benchmark")
class _RMSNormalize(keras.layers.Layer):
    """The hand-written model's level normalisation (each waveform to RMS 0.1)."""

    def call(self, x):
        rms = keras.ops.sqrt(keras.ops.mean(keras.ops.square(x), axis=-1, keepdims=True))
        return x * (0.1 / keras.ops.maximum(rms, 1e-5))


def plain_keras_model():
    """``av_digits_concat`` written by hand with ``keras.layers`` (and a 3-line RMS layer)."""
    image = keras.Input(data.IMAGE_SHAPE, name="image")
    audio = keras.Input((data.NUM_SAMPLES,), name="audio")
    x = image
    for filters in (32, 64):
        x = keras.layers.Conv2D(filters, 3, activation="relu")(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    a = _RMSNormalize()(audio)
    a = keras.layers.MelSpectrogram(num_mel_bins=40, sequence_length=256, sequence_stride=128, fft_length=256,
                                    sampling_rate=data.SAMPLE_RATE, min_freq=20.0, max_freq=4000.0)(a)
    a = keras.layers.Permute((2, 1))(a)
    a = keras.layers.BatchNormalization(synchronized=True)(a)
    a = keras.layers.Reshape((a.shape[1], a.shape[2], 1))(a)
    for filters in AUDIO_FILTERS:
        a = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(a)
        a = keras.layers.MaxPooling2D(2)(a)
    a = keras.layers.Flatten()(a)
    h = keras.layers.Dense(64, activation="relu")(keras.layers.Concatenate()([x, a]))
    h = keras.layers.Dropout(0.2)(h)
    out = keras.layers.Dense(data.NUM_CLASSES, activation="softmax")(h)
    model = keras.Model({"image": image, "audio": audio}, out)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


_DEFAULT = {"batch_size": 32, "precision": "float32", "jit_compile": False, "steps_per_execution": 1,
            "cached": False, "builder": "mmzoo", "overrides": {}}
BEFORE = "before: audio 32-64"  # the default until the audio CNN went to half width: the ratios' baseline
CONFIGS = {
    BEFORE: {"overrides": {"audio_filters": (32, 64)}},
    "default (audio 16-32)": {},
    "cached front end": {"cached": True},
    "batch 64": {"batch_size": 64},
    "steps_per_execution 8": {"steps_per_execution": 8},
    "mixed_bfloat16": {"precision": "mixed_bfloat16"},
    "XLA": {"jit_compile": True},
    "auto + spe 8": {"steps_per_execution": 8, "precision": "auto"},
    "audio 8-16": {"overrides": {"audio_filters": (8, 16)}},
    "image 16-32": {"overrides": {"image_filters": (16, 32)}},
    "plain Keras": {"builder": "plain"},
}


def run(name, seed, epochs):
    """``(examples/s over the timed epochs, test accuracy, precision)`` of one configuration and seed."""
    c = {**_DEFAULT, **CONFIGS[name]}
    precision = distribute.resolve_precision(c["precision"])
    keras.utils.set_random_seed(seed)
    train_ds, test_ds = mmzoo.datasets.av_digits(batch_size=c["batch_size"], seed=seed, shuffle=not c["cached"])
    with distribute.precision_policy(precision):
        model = plain_keras_model() if c["builder"] == "plain" else mmzoo.build("av_digits_concat", **c["overrides"])
        config = model.get_compile_config()
        config.update(steps_per_execution=c["steps_per_execution"], jit_compile=c["jit_compile"])
        model.compile_from_config(config)
        trainer = model
        if c["cached"]:
            trainer, train_ds = frontend.cached(model, train_ds, shuffle=True, batch_size=c["batch_size"], seed=seed)
        n = sum(int(y.shape[0]) for _, y in train_ds)
        trainer.fit(train_ds, epochs=1, verbose=0)  # warm-up: tracing, compilation, the cache filled
        start = time.perf_counter()
        trainer.fit(train_ds, epochs=epochs - 1, verbose=0)
        seconds = time.perf_counter() - start
        accuracy = model.evaluate(test_ds, verbose=0, return_dict=True)["accuracy"]
    return n * (epochs - 1) / seconds, accuracy, precision


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6, help="epochs per run; the first is not timed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated configuration names")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(CONFIGS)
    print(f"{_cpu_name()}, {os.cpu_count()} cores; TensorFlow {tf.__version__}, Keras {keras.__version__}; "
          f"precision auto here: {distribute.auto_precision()}")
    print(f"av_digits_concat on the embedded AV-digits data, {args.epochs} epochs ({args.epochs - 1} timed), "
          f"{args.seeds} seeds\n")
    print(f"{'configuration':24} {'examples/s':>11} {'vs before':>10} {'test accuracy (min-max)':>26}  precision")
    results = {}
    for name in names:
        runs = [run(name, seed, args.epochs) for seed in range(args.seeds)]
        speed = float(np.mean([r[0] for r in runs]))
        accuracy = [r[1] for r in runs]
        results[name] = speed
        ratio = f"{speed / results[BEFORE]:.2f}x" if BEFORE in results else "-"
        print(f"{name:24} {speed:11.0f} {ratio:>10} {np.mean(accuracy):12.3f} ({min(accuracy):.3f}-"
              f"{max(accuracy):.3f})  {runs[0][2]}", flush=True)
    if "plain Keras" in results and "default (audio 16-32)" in results:
        tax = results["default (audio 16-32)"] / results["plain Keras"]
        print(f"\nabstraction tax: mmzoo default at {tax:.2f}x the "
              "examples/s of the hand-written model (target >= 0.95x)")


if __name__ == "__main__":
    main()
