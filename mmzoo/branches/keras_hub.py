"""KerasHub backbones (BERT-family text, ResNet/EfficientNet-family image) as branches.

Each builder takes a preset name (downloaded once from Kaggle/Hugging Face), a
local preset folder (``save_to_preset`` output), or a backbone object. The
text branch's KerasHub preprocessor (tokenizer + packer, tensorflow-text
based) is returned as ``branch.preprocessor`` for ``tf.data``; the image
branch's KerasHub image converter (resize, scale, offset) runs inside the
model after scaling [0, 1] inputs to [0, 255]. ``keras_hub`` is imported
lazily, so ``import mmzoo`` does not pay for it.

The random-weight builders ``text_bert`` and ``image_resnet`` make a KerasHub
backbone and pass it to these builders: random and pretrained weights share
one code path.
"""

from __future__ import annotations

import keras

from mmzoo import _validation as check
from mmzoo._offline import KERAS_HUB_LOCAL_COPY, fetch
from mmzoo.branches.image import MAP_REDUCTIONS, feature_map_regions, reduce_feature_map
from mmzoo.branches.pretrained import PretrainedBranch
from mmzoo.data.tokenizers.keras_hub import KerasHubTokenizer
from mmzoo.layers import SequencePooling, TokenIdsToEncoderInputs


def load_preset_part(kind, preset, loader):
    """Loads ``loader.from_preset(preset)`` with the offline-honest error; ``None`` if the preset lacks it.

    Args:
        kind: What is loaded (``"backbone"``, ``"preprocessor"``, ``"image converter"``), for messages; a
            missing backbone is an error naming ``preset_or_backbone``, a missing other part is ``None``.
        preset: A KerasHub preset name or folder.
        loader: A KerasHub class with ``from_preset``.

    Returns:
        The loaded object, or ``None``.
    """
    def load():
        return loader.from_preset(preset)

    try:
        return fetch(f"KerasHub preset {kind}", preset, load, KERAS_HUB_LOCAL_COPY)
    except (ValueError, FileNotFoundError) as error:
        if kind == "backbone":
            raise ValueError(
                f"`preset_or_backbone` is not a KerasHub preset name or preset folder ({error}). "
                f"Received: preset_or_backbone={preset!r}"
            ) from error
        return None


def resolve_backbone(preset_or_backbone, expected="a keras_hub Backbone"):
    """A KerasHub backbone object as given, or loaded from a preset name or folder.

    Args:
        preset_or_backbone: A ``keras_hub.models.Backbone``, a preset name or a preset folder.
        expected: What kind of backbone the caller takes, for the error message.

    Returns:
        The backbone.

    Raises:
        ValueError: For anything else, naming ``preset_or_backbone``.
    """
    import keras_hub  # noqa: PLC0415

    if isinstance(preset_or_backbone, keras_hub.models.Backbone):
        return preset_or_backbone
    if isinstance(preset_or_backbone, str) and preset_or_backbone:
        return load_preset_part("backbone", preset_or_backbone, keras_hub.models.Backbone)
    raise ValueError(
        f"`preset_or_backbone` must be a KerasHub preset name, a preset folder or {expected}. "
        f"Received: preset_or_backbone={preset_or_backbone!r}"
    )


def _backbone(preset_or_backbone, name, trainable):
    backbone = resolve_backbone(preset_or_backbone)
    backbone.name = f"{name}_backbone"  # branch-prefixed, for mmzoo.finetune
    backbone.trainable = bool(trainable)
    return backbone


# The branch's preprocessor is a mmzoo tokenizer (``save``/``load_tokenizer``, usable in ``TextColumn``).
KerasHubTextPreprocessor = KerasHubTokenizer


def text_keras_hub(preset_or_backbone, sequence_length=128, reduction="pooled", trainable=True, preprocessor=None,
                   name="text"):
    """A KerasHub BERT-family backbone on int32 token ids as a text branch.

    The model input is the token ids (padding 0); the padding mask and zero
    segment ids are made inside the model (``TokenIdsToEncoderInputs``).

    Args:
        preset_or_backbone: A preset name (e.g. ``"bert_tiny_en_uncased"``), a
            local preset folder, or a ``keras_hub.models.Backbone`` whose
            inputs are ``token_ids``, ``padding_mask`` (and ``segment_ids``).
        sequence_length: Token ids per example.
        reduction: ``"pooled"`` (the backbone's pooled ``[CLS]`` output) or
            ``"avg"`` (mean of the sequence output over non-padding tokens).
        trainable: Whether the backbone's weights train.
        preprocessor: A KerasHub ``TextClassifierPreprocessor`` to use;
            defaults to the preset's (none for a backbone object).
        name: Input name and layer-name prefix.

    Returns:
        A ``PretrainedBranch`` whose ``preprocessor`` is a
        ``mmzoo.data.KerasHubTokenizer`` mapping strings to int32 ids
        (``None`` when no preprocessor is known): pass it to
        ``mmzoo.data.TextColumn`` for ``make_dataset`` and
        ``mmzoo.export(preprocessing=...)``. Its ``sequence`` is the
        backbone's ``sequence_output`` ``(batch, sequence_length, width)``
        with ``sequence_mask`` the padding mask (ids != 0).

    Raises:
        ValueError: If an argument is invalid.
        ConnectionError: If a preset must be downloaded and cannot be.

    Example::

        text = branches.text_keras_hub("presets/bert_tiny_en_uncased", sequence_length=64)
        train = branches.apply_preprocessors(raw_train.batch(32), [text])
        columns = {"text": data.TextColumn("annotation", text.preprocessor),
                   "image": data.ImageColumn("image", (224, 224, 3))}
        mmzoo.export(model, "saved_models/emoji", preprocessing=columns)
    """
    import keras_hub  # noqa: PLC0415

    check.positive_int("sequence_length", sequence_length)
    check.choice("reduction", reduction, {"pooled", "avg"})
    check.identifier("name", name)
    backbone = _backbone(preset_or_backbone, name, trainable)
    keys = set(backbone.input) if isinstance(backbone.input, dict) else set()
    if not {"token_ids", "padding_mask"} <= keys:
        raise ValueError(
            f"`preset_or_backbone` must be a text backbone taking token_ids and padding_mask. Received one taking "
            f"{sorted(keys) or backbone.input}"
        )
    max_length = getattr(backbone, "max_sequence_length", None)
    if max_length and sequence_length > max_length:
        raise ValueError(
            f"`sequence_length` exceeds the backbone's max_sequence_length={max_length}. "
            f"Received: sequence_length={sequence_length}"
        )
    if preprocessor is None and isinstance(preset_or_backbone, str):
        preprocessor = load_preset_part("preprocessor", preset_or_backbone, keras_hub.models.TextClassifierPreprocessor)
    if preprocessor is not None:
        preprocessor = KerasHubTokenizer(preprocessor, sequence_length)
    inputs = keras.Input((sequence_length,), dtype="int32", name=name)
    encoder_inputs = TokenIdsToEncoderInputs(
        "token_ids", "padding_mask", "segment_ids" if "segment_ids" in keys else None, name=f"{name}_encoder_inputs"
    )(inputs)
    outputs = backbone(encoder_inputs)
    sequence = outputs.get("sequence_output") if isinstance(outputs, dict) else outputs
    if reduction == "pooled":
        if not isinstance(outputs, dict) or "pooled_output" not in outputs:
            raise ValueError("This backbone has no pooled_output. Received: reduction='pooled'; use 'avg'.")
        features = outputs["pooled_output"]
    else:
        if sequence is None:
            raise ValueError("This backbone has no sequence_output. Received: reduction='avg'; use 'pooled'.")
        features = SequencePooling("avg", name=f"{name}_avg_pool")(sequence, mask=encoder_inputs["padding_mask"])
    source = preset_or_backbone if isinstance(preset_or_backbone, str) else backbone.name
    if sequence is not None and len(sequence.shape) != 3:
        sequence = None
    return PretrainedBranch(
        name, inputs, features, "text", preprocessor=preprocessor, source=source, sequence=sequence,
        sequence_mask=None if sequence is None else encoder_inputs["padding_mask"],
    )


def image_keras_hub(preset_or_backbone, input_shape=(224, 224, 3), reduction="avg", trainable=True,
                    image_converter=None, name="image"):
    """A KerasHub image backbone (ResNet, EfficientNet, ...) as an image branch.

    Inputs in [0, 1] are scaled to [0, 255] and passed through the preset's
    KerasHub image converter (its resize, scale and offset; part of the
    model, so exports take [0, 1] images), then the backbone; its feature map
    is globally pooled. Without a converter (a backbone object and no
    ``image_converter``, as ``image_resnet`` builds), the backbone takes the
    [0, 1] images as they are.

    Args:
        preset_or_backbone: A preset name (e.g. ``"resnet_50_imagenet"``), a
            local preset folder, or a ``keras_hub.models.Backbone``.
        input_shape: ``(height, width, channels)``.
        reduction: ``"avg"`` or ``"max"`` global pooling, or ``"flatten"``.
        trainable: Whether the backbone's weights train.
        image_converter: A KerasHub ``ImageConverter`` to use; defaults to
            the preset's. A pretrained backbone object needs the converter
            it was pretrained with (it takes [0, 255] images).
        name: Input name and layer-name prefix.

    Returns:
        A ``PretrainedBranch`` (no preprocessor); its ``sequence`` is the
        backbone's feature map as ``(batch, H * W, channels)`` regions
        (``feature_map_regions``), no mask.

    Raises:
        ValueError: If an argument is invalid.
        ConnectionError: If a preset must be downloaded and cannot be.

    Example::

        image = branches.image_keras_hub("presets/resnet_18_imagenet", (224, 224, 3), trainable=False)
    """
    import keras_hub  # noqa: PLC0415

    input_shape = check.shape("input_shape", input_shape, 3)
    check.choice("reduction", reduction, MAP_REDUCTIONS)
    check.identifier("name", name)
    backbone = _backbone(preset_or_backbone, name, trainable)
    if image_converter is None and isinstance(preset_or_backbone, str):
        image_converter = load_preset_part("image converter", preset_or_backbone, keras_hub.layers.ImageConverter)
    inputs = keras.Input(input_shape, name=name)
    x = inputs
    if image_converter is not None:  # KerasHub converters take [0, 255] images
        x = keras.layers.Rescaling(255.0, name=f"{name}_rescale")(x)
        image_converter.name = f"{name}_image_converter"
        x = image_converter(x)
    x = backbone(x)
    if len(x.shape) != 4:
        raise ValueError(f"`preset_or_backbone` must be an image backbone with a feature-map output. Got {x.shape}.")
    source = preset_or_backbone if isinstance(preset_or_backbone, str) else backbone.name
    return PretrainedBranch(
        name, inputs, reduce_feature_map(x, reduction, name), "image", source=source,
        sequence=feature_map_regions(x, name),
    )
