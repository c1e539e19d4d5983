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
  ``XLA``, ``auto + spe 8`` (``precision="auto"`` with 8 steps per call), with
  the cached front end too, and with batch 64 at learning rate 2e-3; and
  ``batch 64 lr 2e-3`` alone (twice the batch, twice the step: the same
  accuracy after the same epochs, where batch 64 at 1e-3 falls behind);
* float32 on a CPU without native bf16, where ``auto`` means float32:
  ``spe 8 + cached``, with batch 64 at 2e-3, and with the image CNN at
  filters (16, 32) (``mmzoo train --cache-frontend`` and
  ``image_filters=(16, 32)``);
* ``audio 8-16``, ``image 16-32``: narrower still;
* ``plain Keras``: today's default architecture written by hand
  (``keras.layers`` only), trained the same way: the abstraction tax (target:
  mmzoo at >= 0.95x).

The configurations of one seed are trained side by side, one epoch of each
in turn, and every ratio is the median over the timed epochs of the
configuration's examples/s over the baseline's in the same round. Each ratio
is also given in this process's CPU time: on the shared 2-core machines of
this project the wall time of one epoch of the same model moved by up to 2x
from epoch to epoch, with almost no steal reported (the run prints the
share), while its CPU time moved by about 10%.

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
DEFAULT = "default (audio 16-32)"
BEFORE = "before: audio 32-64"  # the default until the audio CNN went to half width: the ratios' baseline
CONFIGS = {
    BEFORE: {"overrides": {"audio_filters": (32, 64)}},
    DEFAULT: {},
    "cached front end": {"cached": True},
    "batch 64": {"batch_size": 64},
    "steps_per_execution 8": {"steps_per_execution": 8},
    "mixed_bfloat16": {"precision": "mixed_bfloat16"},
    "XLA": {"jit_compile": True},
    "auto + spe 8": {"steps_per_execution": 8, "precision": "auto"},
    "batch 64 lr 2e-3": {"batch_size": 64, "overrides": {"learning_rate": 2e-3}},
    "auto + spe 8 + cached": {"steps_per_execution": 8, "precision": "auto", "cached": True},
    "auto + spe 8 + b64 lr 2e-3": {"steps_per_execution": 8, "precision": "auto", "batch_size": 64,
                                   "overrides": {"learning_rate": 2e-3}},
    "spe 8 + cached": {"steps_per_execution": 8, "cached": True},
    "spe 8 + cached + b64 lr 2e-3": {"steps_per_execution": 8, "cached": True, "batch_size": 64,
                                     "overrides": {"learning_rate": 2e-3}},
    "spe 8 + cached + image 16-32": {"steps_per_execution": 8, "cached": True,
                                     "overrides": {"image_filters": (16, 32)}},
    "audio 8-16": {"overrides": {"audio_filters": (8, 16)}},
    "image 16-32": {"overrides": {"image_filters": (16, 32)}},
    "plain Keras": {"builder": "plain"},
}


def _cpu_ticks():
    """``(steal, total)`` clock ticks of all CPUs from ``/proc/stat`` (``(0, 0)`` where there is none)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


class _EpochClock(keras.callbacks.Callback):
    """Wall time, process CPU time and ``/proc/stat`` ticks of one epoch, from its first batch to its end.

    Timed inside ``fit``, so the set-up of each ``fit`` call (its iterator
    and callbacks; once per run in real use, once per epoch here) is not
    counted.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._start = (time.perf_counter(), time.process_time(), *_cpu_ticks())

    def on_epoch_end(self, epoch, logs=None):
        wall, cpu, steal, ticks = self._start
        now_steal, now_ticks = _cpu_ticks()
        self.wall, self.cpu = time.perf_counter() - wall, time.process_time() - cpu
        self.steal, self.ticks = now_steal - steal, now_ticks - ticks


def prepare(name, seed):
    """One configuration and seed, built and compiled: a dict with the model to fit and its data."""
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
    return {"model": model, "trainer": trainer, "train": train_ds, "test": test_ds, "n": n, "precision": precision,
            "wall": [], "cpu": []}


def run_seed(names, seed, epochs):
    """Trains every configuration of ``names`` for ``epochs`` epochs, one epoch of each in turn.

    The first epoch (tracing, compilation, caches) is not timed. The timed
    epochs are interleaved: round ``r`` trains epoch ``r`` of every
    configuration, so a slow spell of this shared machine falls on all of
    them alike, and each epoch's ratio to the baseline's epoch of the same
    round is measured seconds apart. Each epoch records its wall
    time and the process's CPU time (``_EpochClock``).

    Returns:
        ``({name: prepared run with "wall", "cpu" and "accuracy"}, (steal, total) ticks of the timed epochs)``.
    """
    runs = {name: prepare(name, seed) for name in names}
    steal = total = 0
    for epoch in range(epochs):
        for r in runs.values():
            clock = _EpochClock()
            with distribute.precision_policy(r["precision"]):
                r["trainer"].fit(r["train"], epochs=1, verbose=0, callbacks=[clock])
            if epoch:  # the first epoch is the warm-up
                r["wall"].append(clock.wall)
                r["cpu"].append(clock.cpu)
                steal, total = steal + clock.steal, total + clock.ticks
    for r in runs.values():
        with distribute.precision_policy(r["precision"]):
            r["accuracy"] = r["model"].evaluate(r["test"], verbose=0, return_dict=True)["accuracy"]
    return runs, (steal, total)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6, help="epochs per run; the first is not timed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated configuration names")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        parser.error(f"--only: unknown configuration(s) {unknown}; known: {list(CONFIGS)}")
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first is not timed)")
    if BEFORE not in names:
        names.insert(0, BEFORE)  # the ratios' baseline, timed in the same rounds
    print(f"{_cpu_name()}, {os.cpu_count()} cores; TensorFlow {tf.__version__}, Keras {keras.__version__}; "
          f"precision auto here: {distribute.auto_precision()}")
    print(f"av_digits_concat on the embedded AV-digits data, {args.epochs} epochs ({args.epochs - 1} timed, "
          f"the configurations interleaved epoch by epoch), {args.seeds} seeds\n")
    seeds, steal, total = [], 0, 0
    for seed in range(args.seeds):
        runs, (s, t) = run_seed(names, seed, args.epochs)
        seeds.append(runs)
        steal, total = steal + s, total + t
    print(f"{'configuration':24} {'examples/s':>11} {'vs before':>10} {'CPU vs before':>14} "
          f"{'test accuracy (min-max)':>26}  precision")
    for name in names:
        speed = float(np.median([r[name]["n"] / w for r in seeds for w in r[name]["wall"]]))
        accuracy = [r[name]["accuracy"] for r in seeds]
        print(f"{name:24} {speed:11.0f} {ratio(seeds, name, BEFORE, 'wall'):9.2f}x "
              f"{ratio(seeds, name, BEFORE, 'cpu'):13.2f}x {np.mean(accuracy):12.3f} "
              f"({min(accuracy):.3f}-{max(accuracy):.3f})  {seeds[0][name]['precision']}", flush=True)
    print("\nexamples/s: median over the timed epochs; vs before: median over those epochs of the ratio to the "
          "baseline's epoch of the same round; CPU vs before: the same ratio in examples per second of this "
          "process's CPU time (each epoch timed inside fit).")
    if total:
        print(f"steal (CPU time this machine's hypervisor gave to other tenants) during the timed epochs: "
              f"{100 * steal / total:.1f}%")
    if "plain Keras" in names and DEFAULT in names:
        print(f"abstraction tax: mmzoo default at {ratio(seeds, DEFAULT, 'plain Keras', 'wall'):.2f}x (CPU time: "
              f"{ratio(seeds, DEFAULT, 'plain Keras', 'cpu'):.2f}x) the examples/s of the hand-written model "
              "(target >= 0.95x)")


def ratio(seeds, name, base, clock):
    """Median over the timed epochs of ``name``'s examples/s over ``base``'s of the same round.

    ``clock`` is ``"wall"`` (elapsed time) or ``"cpu"`` (this process's CPU time).
    """
    return float(np.median([
        (r[name]["n"] / t) / (r[base]["n"] / bt) for r in seeds for t, bt in zip(r[name][clock], r[base][clock])
    ]))


if __name__ == "__main__":
    main()
