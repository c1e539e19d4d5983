"""TensorFlow Hub branches: TF2 SavedModels (a URL handle or a local folder) in Keras 3.

Each builder wraps the SavedModel in ``mmzoo.layers.HubLayer`` (not
``tensorflow_hub.KerasLayer``, which is Keras 2 and fails in Keras 3 models).
``trainable=True`` fine-tunes its variables; a frozen one runs in inference
mode. The model inputs keep the package contract: images float32 in [0, 1],
token ids int32 (padding 0), waveforms float32. A hub text preprocessor
(strings -> ids) is returned as ``branch.preprocessor`` for ``tf.data``.

Keras-2-only hub models (TF1 Hub format, or exports without a TF2
``__call__``) are refused with a ``ValueError`` naming the handle; models
with TF1-style serving signatures can be used with ``signature=``.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from mmzoo import _validation as check
from mmzoo._offline import load_hub_module
from mmzoo.branches.image import reduce_feature_map
from mmzoo.branches.pretrained import PretrainedBranch
from mmzoo.layers import HubLayer, SequencePooling, TokenIdsToEncoderInputs


def _features(x, reduction, name):
    """Reduces a hub output of rank 2, 3 (sequence) or 4 (map) to ``(batch, width)``."""
    if len(x.shape) == 4:
        return reduce_feature_map(x, reduction, name)
    if len(x.shape) == 3:
        return SequencePooling(reduction, name=f"{name}_{reduction}_pool")(x)
    if len(x.shape) != 2:
        raise ValueError(f"Branch '{name}': the hub model's output has unsupported shape {x.shape}.")
    return x


def _hub_layer(handle, output_key, signature, trainable, name):
    check.identifier("name", name)
    return HubLayer(
        handle, output_key=output_key, signature=signature, trainable=bool(trainable),
        dtype="float32", name=f"{name}_hub",
    )


def image_tf_hub(
    handle, input_shape=(224, 224, 3), output_key=None, trainable=False, reduction="avg", signature=None,
    name="image",
):
    """A TF Hub image model (feature vector or feature map) as an image branch.

    TF Hub image models take float32 images in [0, 1], the package's image
    contract, so inputs are passed unchanged.

    Args:
        handle: TF Hub URL handle or local SavedModel folder.
        input_shape: ``(height, width, channels)`` of the input images.
        output_key: Output to use when the model returns a dict or tuple.
        trainable: Fine-tune the model's variables.
        reduction: ``"avg"``, ``"max"`` or ``"flatten"``, for a feature-map
            (rank-4) output.
        signature: Call this serving signature instead of ``__call__``.
        name: Input name and layer-name prefix.

    Returns:
        A ``PretrainedBranch`` (no preprocessor) with the model's features.

    Raises:
        ValueError: If an argument is invalid or the SavedModel is unusable
            in Keras 3 (see the module docstring).
        ConnectionError: If a URL handle cannot be downloaded.

    Example::

        image = branches.image_tf_hub("/models/efficientnet_b0_feature_vector", (224, 224, 3))
    """
    input_shape = check.shape("input_shape", input_shape, 3)
    check.choice("reduction", reduction, {"avg", "max", "flatten"})
    layer = _hub_layer(handle, output_key, signature, trainable, name)
    inputs = keras.Input(input_shape, name=name)
    features = _features(layer(inputs), reduction, name)
    return PretrainedBranch(name, inputs, features, "image", source=handle)


def audio_tf_hub(
    handle, num_samples=16000, output_key=None, trainable=False, reduction="avg", signature=None, name="audio"
):
    """A TF Hub audio model on float32 waveforms as an audio branch.

    Models that take one unbatched 1-D waveform (such as YAMNet) are mapped
    over the batch; frame-level outputs ``(frames, width)`` are pooled over
    frames with ``reduction``.

    Args:
        handle: TF Hub URL handle or local SavedModel folder.
        num_samples: Samples per waveform (at the model's sample rate).
        output_key: Output to use when the model returns a dict or tuple
            (YAMNet: ``1`` for its 1,024-wide embeddings).
        trainable: Fine-tune the model's variables.
        reduction: ``"avg"`` or ``"max"`` over frames.
        signature: Call this serving signature instead of ``__call__``.
        name: Input name and layer-name prefix.

    Returns:
        A ``PretrainedBranch`` (no preprocessor).

    Raises:
        ValueError: If an argument is invalid or the SavedModel is unusable.
        ConnectionError: If a URL handle cannot be downloaded.

    Example::

        audio = branches.audio_tf_hub("/models/yamnet", num_samples=16000, output_key=1)
    """
    check.positive_int("num_samples", num_samples)
    check.choice("reduction", reduction, {"avg", "max"})
    layer = _hub_layer(handle, output_key, signature, trainable, name)
    spec = layer.module_input_spec()
    layer.batched = not (isinstance(spec, tf.TensorSpec) and spec.shape.rank == 1)
    inputs = keras.Input((num_samples,), name=name)
    return PretrainedBranch(name, inputs, _features(layer(inputs), reduction, name), "audio", source=handle)


def _find_key(keys, candidates, handle, what):
    for key in keys:
        if any(c in key for c in candidates):
            return key
    raise ValueError(f"The text encoder at handle={handle!r} takes {sorted(keys)}: no {what} input among them.")


class HubTextPreprocessor(tf.Module):
    """A TF Hub text preprocessor as a ``tf.data`` map: strings -> int32 ids.

    Calls the preprocessor SavedModel on a batch of strings and returns its
    ``input_word_ids`` (or its only output), shape ``(batch, sequence_length)``.

    Args:
        handle: The preprocessor's handle or folder.
        sequence_length: The length the encoder branch expects; must equal
            the preprocessor's own output length.

    Raises:
        ValueError: If the preprocessor's output length is not ``sequence_length``.
        ConnectionError: If a URL handle cannot be downloaded.
    """

    def __init__(self, handle, sequence_length):
        super().__init__(name="hub_text_preprocessor")
        self.handle = handle
        self.sequence_length = check.positive_int("sequence_length", sequence_length)
        self.module = load_hub_module(handle)
        length = self(tf.constant(["a"])).shape[-1]
        if length != sequence_length:
            raise ValueError(
                f"The preprocessor {handle!r} makes sequences of length {length}: pass sequence_length={length}. "
                f"Received: sequence_length={sequence_length}"
            )

    def __call__(self, texts):
        texts = tf.convert_to_tensor(texts, tf.string)
        scalar = texts.shape.rank == 0
        outputs = self.module(tf.reshape(texts, [-1]))
        if isinstance(outputs, dict):
            outputs = outputs["input_word_ids"] if "input_word_ids" in outputs else outputs[sorted(outputs)[0]]
        ids = tf.cast(outputs, tf.int32)
        return ids[0] if scalar else ids


def text_tf_hub(
    handle,
    sequence_length=128,
    preprocessor_handle=None,
    output_key=None,
    reduction="pooled",
    trainable=False,
    signature=None,
    name="text",
):
    """A TF Hub text encoder on int32 token ids as a text branch.

    BERT-style encoders (a dict input of word ids, mask and type ids) get the
    dict built inside the model from the ids (mask = ids != 0, type ids 0);
    encoders taking one id tensor get the ids. Encoders that take raw strings
    cannot run inside the numeric model: use them in ``tf.data`` instead.

    Args:
        handle: The encoder's TF Hub URL handle or local SavedModel folder.
        sequence_length: Token ids per example.
        preprocessor_handle: Optional handle of the matching preprocessor
            (strings -> ids); returned as ``branch.preprocessor`` for
            ``tf.data`` (see ``apply_preprocessors``).
        output_key: Output to use; defaults to ``"pooled_output"`` for
            ``reduction="pooled"`` and ``"sequence_output"`` otherwise
            (when the encoder returns a dict).
        reduction: ``"pooled"`` (the encoder's pooled output), ``"avg"``
            (mean over non-padding tokens of the sequence output), ``"max"``
            or ``"first"``.
        trainable: Fine-tune the encoder's variables.
        signature: Call this serving signature instead of ``__call__``.
        name: Input name and layer-name prefix.

    Returns:
        A ``PretrainedBranch`` whose ``preprocessor`` is a
        ``HubTextPreprocessor`` (or ``None``).

    Raises:
        ValueError: If an argument is invalid, or the encoder takes strings
            or is unusable in Keras 3.
        ConnectionError: If a URL handle cannot be downloaded.

    Example::

        text = branches.text_tf_hub("/models/bert_en_uncased_L-4_H-256", sequence_length=128,
                                    preprocessor_handle="/models/bert_en_uncased_preprocess")
    """
    check.positive_int("sequence_length", sequence_length)
    check.choice("reduction", reduction, {"pooled", "avg", "max", "first"})
    check.identifier("name", name)
    if output_key is None and reduction == "pooled":
        output_key = "pooled_output"
    elif output_key is None:
        output_key = "sequence_output"
    preprocessor = HubTextPreprocessor(preprocessor_handle, sequence_length) if preprocessor_handle else None
    layer = _hub_layer(handle, output_key, signature, trainable, name)
    spec = layer.module_input_spec()
    lengths = {s.shape[-1] for s in tf.nest.flatten(spec)} - {None}
    if lengths and lengths != {sequence_length}:
        raise ValueError(
            f"The text encoder at handle={handle!r} takes sequences of length {sorted(lengths)}. "
            f"Received: sequence_length={sequence_length}"
        )
    inputs = keras.Input((sequence_length,), dtype="int32", name=name)
    if isinstance(spec, dict):
        keys = list(spec)
        encoder_inputs = TokenIdsToEncoderInputs(
            ids_key=_find_key(keys, ("word_ids", "token_ids"), handle, "token ids"),
            mask_key=_find_key(keys, ("mask",), handle, "mask"),
            segment_key=next((k for k in keys if "type_ids" in k or "segment" in k), None),
            name=f"{name}_encoder_inputs",
        )
        encoder_in = encoder_inputs(inputs)
        mask = encoder_in[encoder_inputs.mask_key]
    elif spec.dtype == tf.string:
        raise ValueError(
            f"The text encoder at handle={handle!r} takes raw strings; strings stay out of the numeric model. "
            "Run it in tf.data (frozen features) or use a token-id encoder with a preprocessor."
        )
    else:
        encoder_in, mask = inputs, TokenIdsToEncoderInputs(name=f"{name}_mask")(inputs)["input_mask"]
    x = layer(encoder_in)
    if reduction != "pooled" and len(x.shape) == 3:
        x = SequencePooling(reduction, name=f"{name}_{reduction}_pool")(x, mask=mask)
    elif len(x.shape) != 2:
        raise ValueError(
            f"The encoder output {output_key!r} of handle={handle!r} has shape {x.shape}; "
            "choose a pooled output or reduction='avg' with a sequence output."
        )
    return PretrainedBranch(name, inputs, x, "text", preprocessor=preprocessor, source=handle)
