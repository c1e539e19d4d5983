"""``PretrainedBranch``: a ``Branch`` that also carries its input-pipeline preprocessor.

Pretrained text encoders need their own tokenizer: it runs on strings, so it
belongs in ``tf.data`` (and in an export's raw-input serving function), never
in the trainable model. The branch hands it over as ``branch.preprocessor``.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from mmzoo.branches.base import Branch


@dataclasses.dataclass(frozen=True)
class PretrainedBranch(Branch):
    """A ``Branch`` plus the callable that turns raw inputs into its model input.

    Attributes:
        preprocessor: ``None`` when the branch takes the package's numeric
            contract directly (images in [0, 1], waveforms); otherwise a
            callable (a ``tf.Module`` or KerasHub layer) mapping a batch of
            raw values (strings) to the branch's input tensor, for ``tf.data``.
        source: The preset, handle or application the weights came from.
    """

    preprocessor: object = None
    source: object = None


def apply_preprocessors(dataset, branches):
    """Maps each branch's ``preprocessor`` over its feature in a batched dataset.

    Args:
        dataset: A ``tf.data.Dataset`` of ``(features_dict, label)`` or of
            ``features_dict``, batched, with raw values for the branches
            that have a preprocessor (e.g. strings under ``"text"``).
        branches: The branches of the model (``Branch`` objects; those
            without a preprocessor are left alone).

    Returns:
        The mapped dataset (``AUTOTUNE`` parallel map).

    Raises:
        ValueError: If ``branches`` holds something that is not a ``Branch``.

    Example::

        text = branches.text_keras_hub("presets/bert_tiny", sequence_length=32)
        train = branches.apply_preprocessors(raw_train.batch(32), [text, image])
    """
    for branch in branches:
        if not isinstance(branch, Branch):
            raise ValueError(f"`branches` must hold Branch objects. Received: {branch!r}")
    preprocessors = {b.name: b.preprocessor for b in branches if getattr(b, "preprocessor", None) is not None}

    def convert(features):
        return {key: preprocessors[key](value) if key in preprocessors else value for key, value in features.items()}

    def map_fn(*element):
        if len(element) == 1:
            return convert(element[0])
        return (convert(element[0]), *element[1:])

    return dataset.map(map_fn, num_parallel_calls=tf.data.AUTOTUNE)
