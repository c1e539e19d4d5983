"""Deterministic front ends computed once for training, kept in the model for serving.

An mmzoo audio branch starts with weight-free, deterministic layers (level
normalisation, the log-mel spectrogram, a transpose) that run inside the
model so that a SavedModel serves raw waveforms. During training they give
the same values every epoch, so they can run once in ``tf.data`` and be
cached, as the Keras guide on preprocessing layers recommends.

``split(model)`` cuts a functional model after those layers into a
``frontend`` (raw inputs -> features) and a ``trunk`` (features -> outputs)
that shares the model's layers and weights: training the trunk trains the
model. ``cached(model, dataset)`` gives the compiled trunk and the dataset of
cached features to fit it on.
"""

from __future__ import annotations

import warnings

import keras
import tensorflow as tf

from mmzoo import _keras_compat
from mmzoo.layers.audio import Spectrogram
from mmzoo.layers.audio_level import WaveformNormalization

# Weight-free layers whose output depends on their input alone (not on ``training``): a front end.
FRONTEND_LAYERS = (WaveformNormalization, Spectrogram, keras.layers.MelSpectrogram, keras.layers.STFTSpectrogram,
                   keras.layers.Permute, keras.layers.Reshape)


def frontend_outputs(model):
    """For each model input, the last tensor of its chain of ``FRONTEND_LAYERS`` (the input itself if none).

    The chain follows one consumer at a time and stops where a tensor feeds
    several layers or a layer has weights, several inputs, or is not a
    front-end kind.

    Args:
        model: A functional Keras model with dict inputs.

    Returns:
        ``{input name: KerasTensor}``.
    """
    consumers = _keras_compat.tensor_consumers(model)
    outputs = {}
    for name, tensor in _named_inputs(model).items():
        while True:
            users = consumers.get(id(tensor), [])
            if len(users) != 1:
                break
            layer = users[0]
            if not isinstance(layer, FRONTEND_LAYERS) or layer.weights or _keras_compat.call_count(layer) != 1:
                break
            tensor = layer.output
        outputs[name] = tensor
    return outputs


def _named_inputs(model):
    if not isinstance(model.input, dict):
        raise ValueError(f"Front-end caching needs a model with dict inputs keyed by input name; "
                         f"{model.name!r} takes {type(model.input).__name__}.")
    return model.input


def split(model):
    """Cuts ``model`` after its front ends: ``(frontend, trunk)``, sharing the model's layers.

    Args:
        model: A functional Keras model with dict inputs (``mmzoo.compose`` /
            ``mmzoo.build`` models without auxiliary-loss training).

    Returns:
        ``(frontend, trunk)``: ``frontend`` maps the raw inputs to
        ``{name: features}``; ``trunk`` maps those features to the model's
        outputs. ``trunk(frontend(x))`` equals ``model(x)``.

    Raises:
        ValueError: If the model is not a plain functional model with dict
            inputs (a model with auxiliary heads trains with its own step),
            or no input has a front end.

    Example:

    >>> import mmzoo
    >>> from mmzoo.training import frontend
    >>> model = mmzoo.zoo.build_tiny("av_digits_concat")
    >>> features, trunk = frontend.split(model)
    >>> {k: tuple(v.shape) for k, v in sorted(features.output.items())}
    {'audio': (None, 32, 40), 'image': (None, 28, 28, 1)}
    """
    if type(model).train_step is not keras.Model.train_step or getattr(model, "balance", None):
        raise ValueError(f"Model {model.name!r} trains with its own train_step (auxiliary heads or gradient "
                         "modulation); its front end cannot be cached. Train it on raw inputs.")
    outputs = frontend_outputs(model)
    inputs = _named_inputs(model)
    if all(outputs[name] is inputs[name] for name in inputs):
        raise ValueError(f"Model {model.name!r} has no front end to cache (no input starts with "
                         f"{', '.join(cls.__name__ for cls in FRONTEND_LAYERS)}).")
    frontend = keras.Model(inputs, outputs, name=f"{model.name}_frontend")
    with warnings.catch_warnings():  # the features keep the input names as keys, not as tensor names
        warnings.filterwarnings("ignore", message="When providing `inputs` as a dict")
        trunk = _keras_compat.submodel(outputs, model.outputs if len(model.outputs) > 1 else model.outputs[0],
                                       name=f"{model.name}_trunk")
    return frontend, trunk


def compiled_trunk(model):
    """The trunk of ``model``, compiled like it, and the ``tf.data`` map function that computes its features.

    Args:
        model: A compiled functional model (see ``split``).

    Returns:
        ``(trunk, features)``: ``trunk`` shares the layers, weights and
        optimizer of ``model`` (``trunk.fit`` trains ``model``);
        ``features(inputs, *rest)`` returns ``(front-end features, *rest)``,
        to ``map`` over batches of ``(inputs, labels)``.

    Raises:
        ValueError: If ``model`` is not compiled or cannot be split.
    """
    if getattr(model, "optimizer", None) is None or not model.compiled:
        raise ValueError(f"`model` must be compiled (its loss, metrics and optimizer are shared with the trunk). "
                         f"Received the uncompiled model {model.name!r}.")
    frontend, trunk = split(model)
    config = keras.saving.deserialize_keras_object(model.get_compile_config())
    config["optimizer"] = model.optimizer
    trunk.compile(**config)

    def features(inputs, *rest):
        return (frontend(inputs, training=False), *rest)

    return trunk, features


def cached(model, dataset, shuffle=False, batch_size=None, seed=None):
    """The trunk of ``model``, compiled like it, and ``dataset`` with its front ends computed once.

    The features are computed batch by batch, cached in memory on the first
    epoch, and reused: later epochs skip the front end. The trunk shares the
    model's layers, weights and optimizer, so ``trunk.fit(features)`` trains
    ``model``, which keeps its front end for evaluation and export.

    Args:
        model: A compiled functional model (see ``split``).
        dataset: Batched ``(inputs, labels)`` (or ``(inputs, labels,
            weights)``) ``tf.data.Dataset``. Caching freezes the order it
            has on the first pass: give it unshuffled and set ``shuffle``.
        shuffle: Reshuffle the cached examples every epoch (seeded by
            ``seed``) and batch them again by ``batch_size``.
        batch_size: Examples per batch when ``shuffle``.
        seed: Shuffle seed.

    Returns:
        ``(trunk, features_dataset)``.

    Raises:
        ValueError: If ``model`` is not compiled or cannot be split, or
            ``shuffle`` is set without a positive ``batch_size``.

    Example::

        train_ds = mmzoo.datasets.av_digits(batch_size=32, shuffle=False)[0]
        trunk, features = frontend.cached(model, train_ds, shuffle=True, batch_size=32, seed=0)
        trunk.fit(features, epochs=10)   # trains ``model``
        mmzoo.export(model, "saved_models/av_digits")   # the front end is still inside
    """
    if shuffle and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0):
        raise ValueError(f"`batch_size` must be a positive integer when `shuffle` is set. "
                         f"Received: batch_size={batch_size!r}")
    trunk, features = compiled_trunk(model)
    out = dataset.map(features, num_parallel_calls=tf.data.AUTOTUNE).cache()
    if shuffle:
        examples = out.unbatch()
        count = int(examples.reduce(0, lambda n, _: n + 1)) if examples.cardinality() < 0 else int(
            examples.cardinality())
        out = examples.shuffle(max(count, 1), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
        # A known length: on a dataset of unknown cardinality Keras 3.15 counts one more optimizer step per epoch
        # (the step that finds the end of the data), which shifts Adam's bias correction and any step schedule.
        out = out.apply(tf.data.experimental.assert_cardinality(-(-count // batch_size)))
    return trunk, out.prefetch(tf.data.AUTOTUNE)
