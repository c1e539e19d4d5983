"""Shared real inputs for the export/serving tests: files from the shared data folder."""

from __future__ import annotations

import atexit
import functools
import gzip
import json
import os
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import mmzoo
from mmzoo import data

NUM_EXAMPLES = 4
AUDIO_RATE = 8000


def data_dir():
    return data.resolve_data_dir()


def mnist_pngs(n=NUM_EXAMPLES, offset=0):
    """PNG bytes of real MNIST test digits, and their labels."""
    folder = os.path.join(data_dir(), "mnist")
    with gzip.open(os.path.join(folder, "t10k-images-idx3-ubyte.gz"), "rb") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(os.path.join(folder, "t10k-labels-idx1-ubyte.gz"), "rb") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    pngs = [tf.io.encode_png(images[i][..., None]).numpy() for i in range(offset, offset + n)]
    return pngs, labels[offset : offset + n]


def fsdd_paths(n=NUM_EXAMPLES):
    folder = os.path.join(data_dir(), "fsdd", "recordings")
    return [os.path.join(folder, f"{d}_jackson_0.wav") for d in range(n)]


def openmoji_records(n=NUM_EXAMPLES):
    with open(os.path.join(data_dir(), "openmoji", "openmoji.jsonl"), encoding="utf-8") as f:
        records = [json.loads(line) for line in f][:200]
    return records


def columns_for(name, model):
    """The mmzoo.data column specs that feed ``model``'s inputs (fitted tokenizer for text)."""
    entry = mmzoo.zoo.get(name)
    encoders = getattr(model, "image_encoder", None)
    inputs = {"image": model.image_encoder.input, "text": model.text_encoder.input} if encoders else model.input
    columns = {}
    for key, tensor in inputs.items():
        if key == "image":
            columns[key] = data.ImageColumn(key, tuple(tensor.shape[1:]))
        elif key == "audio":
            columns[key] = data.AudioColumn(key, AUDIO_RATE, tensor.shape[1])
        else:
            texts = [r["annotation"] for r in openmoji_records()]
            tokenizer = data.VocabTokenizer.fit(
                texts, sequence_length=tensor.shape[1], vocabulary_size=entry.tiny.get("vocabulary_size", 100)
            )
            columns[key] = data.TextColumn(key, tokenizer)
    return columns


def raw_inputs(columns):
    """Raw bytes/strings per input: MNIST PNGs (grey 28x28) or OpenMoji PNGs, FSDD WAVs, OpenMoji names."""
    records = openmoji_records()[:NUM_EXAMPLES]
    out = {}
    for key, column in columns.items():
        if isinstance(column, data.ImageColumn):
            if tuple(column.image_shape) == (28, 28, 1):
                out[key] = mnist_pngs()[0]
            else:
                paths = [os.path.join(data_dir(), "openmoji", "images", f"{r['hexcode']}.png") for r in records]
                out[key] = [Path(p).read_bytes() for p in paths]
        elif isinstance(column, data.AudioColumn):
            out[key] = [Path(p).read_bytes() for p in fsdd_paths()]
        else:
            out[key] = [r["annotation"].encode("utf-8") for r in records]
    return out


def decode_with_data(columns, raw):
    """Decodes raw inputs through mmzoo.data (as the training pipeline does)."""
    out = {}
    for key, column in columns.items():
        if isinstance(column, data.TextColumn):
            out[key] = np.stack([column.decode(tf.constant(t)).numpy() for t in raw[key]])
        else:
            out[key] = np.stack([column.decode_bytes(tf.constant(b)).numpy() for b in raw[key]])
    return out


@functools.cache
def av_digits_export():
    """``(model, path)``: tiny ``av_digits_concat`` exported with the ``"av_digits"`` preset.

    Built once per test process and shared by the test modules (removed at exit).
    """
    keras.utils.set_random_seed(0)
    model = mmzoo.zoo.build_tiny("av_digits_concat")
    folder = tempfile.mkdtemp(prefix="mmzoo_av_export_")
    atexit.register(shutil.rmtree, folder, True)
    return model, mmzoo.export(model, os.path.join(folder, "av_digits"), preprocessing="av_digits")


def av_digits_test_inputs(n):
    """The first ``n`` examples of the embedded AV-digits test split (model inputs)."""
    from mmzoo.datasets import av_digits_recipe as av_digits

    inputs = av_digits.load_arrays()["test"][0]
    return {k: v[:n] for k, v in inputs.items()}
