"""Frozen image encoders run once per split: ``fit`` trains the layers after them on cached features.

A frozen pretrained encoder (``branches.image_efficientnet_lite0``) gives the same
features every epoch, and at 224 px it costs far more than everything after
it. ``EncodedInputs`` passes each split through the encoders once, keeps the
features (and the split's other inputs and labels) in memory, and serves
shuffled batches of them; ``fit`` trains a model whose image inputs are those
features, then copies its weights into the model that takes raw images. The
features of a split cost less memory than the decoded images that
``make_dataset`` would otherwise cache.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


class EncodedInputs:
    """Encoded splits of one ``DataPlan``, each computed on first use.

    Args:
        plan: The ``DataPlan``; ``plan.encoders`` names the encoded inputs.
        build_encoder: ``fn(input name, column spec) -> keras.Model`` mapping
            the input's decoded batch to its features.
    """

    def __init__(self, plan, build_encoder):
        self._plan = plan
        self._build_encoder = build_encoder
        self._encoders = {}
        self._splits = []  # (manifest, on_error, inputs, labels); a manifest is keyed by identity

    def encoder(self, name):
        """The encoder of input ``name`` as a traced function of a batch (built once)."""
        if name not in self._encoders:
            model = self._build_encoder(name, self._plan.features[name])
            self._encoders[name] = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        return self._encoders[name]

    def _arrays(self, manifest, on_error, verbose):
        from mmzoo import data as data_lib  # noqa: PLC0415

        for seen, seen_on_error, inputs, labels in self._splits:
            if seen is manifest and seen_on_error == on_error:
                return inputs, labels
        if verbose:
            print(f"encoding {len(manifest)} rows' {', '.join(self._plan.encoders)} with the frozen "
                  f"{', '.join(sorted(set(self._plan.encoders.values())))} (once; training reuses the features)")
        raw = data_lib.make_dataset(manifest, self._plan.features, self._plan.label, batch_size=64, cache=False,
                                    on_error=on_error)
        parts, labels = {}, []
        for x, y in raw:
            for name, value in x.items():
                if name in self._plan.encoders:
                    value = self.encoder(name)(value)
                parts.setdefault(name, []).append(np.asarray(value))
            labels.append(np.asarray(y))
        inputs = {name: np.concatenate(values) for name, values in parts.items()}
        labels = np.concatenate(labels)
        self._splits.append((manifest, on_error, inputs, labels))
        return inputs, labels

    def statistics(self, manifest, name, on_error="raise"):
        """``(mean, variance)`` per feature of input ``name`` over ``manifest`` (the training rows)."""
        features = self._arrays(manifest, on_error, 0)[0][name].astype("float64")
        return features.mean(0), features.var(0)

    def dataset(self, manifest, names, batch_size, seed, shuffle, on_error, verbose=0):
        """Batched ``(inputs, label)`` of ``manifest`` with the encoded inputs as features.

        Args:
            manifest: A ``Manifest`` (the same object is encoded once).
            names: The model inputs to yield (a sub-plan's).
            batch_size: Examples per batch.
            seed: Seed of the shuffle.
            shuffle: Reshuffle the examples every pass.
            on_error: ``"raise"`` or ``"skip"`` (``make_dataset``'s).
            verbose: Say when a split is encoded.

        Returns:
            A ``tf.data.Dataset``.
        """
        inputs, labels = self._arrays(manifest, on_error, verbose)
        ds = tf.data.Dataset.from_tensor_slices(({name: inputs[name] for name in names}, labels))
        if shuffle:
            ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
