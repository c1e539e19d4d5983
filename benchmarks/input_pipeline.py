"""Input-pipeline throughput versus model throughput, for each shared task.

For every task it prints, with caching off and on: decoded examples/s of the
training pipeline alone (one full pass after a warm-up pass that traces the functions and, with caching
on, fills the cache),
training examples/s of a representative zoo model fed by that pipeline, and
their ratio (pipeline / model; above 1 the model is never input-bound).

Usage::

    MMZOO_DATA=/path/to/shared/data python benchmarks/input_pipeline.py [--steps 20]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import tensorflow as tf

import mmzoo
from mmzoo import branches, heads


def _pipeline_rate(ds, passes=1):
    start, n = time.perf_counter(), 0
    for _ in range(passes):
        for _, y in ds:
            n += int(tf.shape(y)[0])
    return n / (time.perf_counter() - start)


def _model_rate(model, ds, steps):
    batches = ds.repeat()
    model.fit(batches, steps_per_epoch=2, epochs=1, verbose=0)  # trace + warm up
    start = time.perf_counter()
    model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
    batch = int(tf.shape(next(iter(ds))[1])[0])
    return steps * batch / (time.perf_counter() - start)


def _dual_encoder(vocabulary_size, sequence_length):
    image = branches.image_cnn((72, 72, 3), filters=(32, 64))
    text = branches.text_embedding(sequence_length=sequence_length, vocabulary_size=vocabulary_size)
    a = keras.layers.UnitNormalization()(keras.layers.Dense(64)(image.features))
    b = keras.layers.UnitNormalization()(keras.layers.Dense(64)(text.features))
    logits = keras.layers.Lambda(lambda t: tf.matmul(t[0], t[1], transpose_b=True) * 10.0)([a, b])
    model = keras.Model({"image": image.input, "text": text.input}, logits)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def tasks(data_dir, batch_size):
    """(name, make_dataset(cache) -> train_ds, make_model) for each shared task."""

    def av(cache):  # built once into in-memory arrays: caching does not apply
        return mmzoo.datasets.av_digits(batch_size=batch_size, data_dir=data_dir, drop_remainder=True)[0]

    def av_model():
        return mmzoo.compose(
            [branches.image_cnn((28, 28, 1)), branches.audio_spectrogram_cnn(num_samples=4000)],
            head=heads.multiclass(10),
        )

    _, _, info = mmzoo.datasets.emoji_groups(data_dir, batch_size=batch_size, with_info=True)

    def groups(cache):
        return mmzoo.datasets.emoji_groups(
            data_dir, batch_size=batch_size, cache=cache, tokenizer=info.tokenizer, drop_remainder=True
        )[0]

    def groups_model():
        return mmzoo.compose(
            [
                branches.image_cnn((72, 72, 3)),
                branches.text_embedding(sequence_length=32, vocabulary_size=info.vocabulary_size),
            ],
            head=heads.multiclass(11),
        )

    _, _, rinfo = mmzoo.datasets.emoji_retrieval(data_dir, batch_size=batch_size, with_info=True)

    def retrieval(cache):
        return mmzoo.datasets.emoji_retrieval(
            data_dir, batch_size=batch_size, cache=cache, tokenizer=rinfo.tokenizer, drop_remainder=True
        )[0]

    return [
        ("av_digits (full, in-memory arrays)", av, av_model),
        ("emoji_groups", groups, groups_model),
        ("emoji_retrieval", retrieval, lambda: _dual_encoder(rinfo.vocabulary_size, 16)),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="shared data folder (default: $MMZOO_DATA or ../shared/data)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per measurement")
    args = parser.parse_args(argv)
    data_dir = mmzoo.data.resolve_data_dir(args.data_dir)
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores, batch size {args.batch_size}")
    print(f"{'task':38s} {'cache':>5s} {'pipeline ex/s':>14s} {'model ex/s':>11s} {'ratio':>7s}")
    for name, make_ds, make_model in tasks(data_dir, args.batch_size):
        model = make_model()
        for cache in (False, True):
            ds = make_ds(cache)
            _pipeline_rate(ds)  # warm-up pass: traces the functions (and fills the cache when on)
            pipeline = _pipeline_rate(ds)
            trained = _model_rate(model, ds, args.steps)
            print(
                f"{name:38s} {'on' if cache else 'off':>5s} {pipeline:14.0f} {trained:11.0f} {pipeline / trained:7.1f}"
            )


if __name__ == "__main__":
    main()
