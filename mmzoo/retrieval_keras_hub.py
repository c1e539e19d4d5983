"""A ``DualEncoder`` from a pretrained KerasHub CLIP or SigLIP preset, and its tokenizer.

``keras_hub_dual_encoder(preset)`` splits a KerasHub ``CLIPBackbone`` or
``SigLIPBackbone`` into the two towers of a ``mmzoo.retrieval.DualEncoder``:

* image tower: float32 [0, 1] images ``(batch, H, W, 3)`` -> ``x 255`` ->
  the preset's image converter (resize, scale, offset) -> the vision encoder
  (``image_backbone``) -> [CLIP: the class token and the preset's
  ``vision_projection`` (``image_projection``)] -> L2 normalisation;
* text tower: int32 token ids ``(batch, L)`` from the preset's tokenizer ->
  the text encoder (``text_backbone``) -> [CLIP: the output at the end
  token, the largest id, as ``CLIPBackbone`` pools it, and the preset's
  ``text_projection`` (``text_projection``)] -> L2 normalisation.

SigLIP's encoders pool and project themselves (attention pooling for images,
the last token for text). The towers compute the preset's own image and text
embeddings, normalised. Their layers are prefixed ``image_`` / ``text_``, so
``mmzoo.finetune.freeze(model, "image")`` locks the image tower (LiT) and
``unfreeze`` opens it again.

Token ids are the preset's own: CLIP pads with id 0 after the end token (in
CLIP's vocabulary id 0 is ``"!"``, a real token, so no padding mask is derived
from id 0: the text encoder is causal and pools at the end token, so what
follows it never reaches the embedding); SigLIP pads with its end token and
pools the last position. ``KerasHubPromptTokenizer`` wraps the preset's
``CLIPPreprocessor`` / ``SigLIPPreprocessor`` (text part) in the mmzoo
tokenizer interface for ``TextColumn``, ``make_dataset`` and ``mmzoo.export``.

``keras_hub`` is imported only when the builder is used. The tokenizer
(``mmzoo.data.tokenizers.KerasHubPromptTokenizer``) and the text pooling layer
(``mmzoo.layers.ArgmaxTokenPooling``) live with their kinds, so a saved model
and an export's saved tokenizer load without importing this module.
"""

from __future__ import annotations

import math

import keras

from mmzoo import _validation as check
from mmzoo.branches.keras_hub import load_preset_part, resolve_backbone
from mmzoo.data.tokenizers import KerasHubPromptTokenizer
from mmzoo.layers import ArgmaxTokenPooling, SequencePooling

KINDS = ("CLIP", "SigLIP")


def _families():
    """``{kind: (backbone class, preprocessor class)}`` of the supported KerasHub models."""
    import keras_hub  # noqa: PLC0415

    return {
        "CLIP": (keras_hub.models.CLIPBackbone, keras_hub.models.CLIPPreprocessor),
        "SigLIP": (keras_hub.models.SigLIPBackbone, keras_hub.models.SigLIPPreprocessor),
    }


def _kind_of(obj, index):
    for kind, classes in _families().items():
        if isinstance(obj, classes[index]):
            return kind
    return None


def _sequence(outputs):
    """An encoder's sequence output (``intermediate_output_index`` makes it a dict)."""
    return outputs["sequence_output"] if isinstance(outputs, dict) else outputs


def _preset_temperature(backbone):
    """``1 / exp(logit_scale)`` of the backbone's CLIP/SigLIP head (the preset's learned temperature)."""
    for layer in backbone.layers:
        scale = getattr(layer, "logit_scale", None)
        if scale is not None:
            return float(1.0 / math.exp(float(keras.ops.convert_to_numpy(scale))))
    return 0.07


def keras_hub_dual_encoder(preset_or_backbone, image_shape=None, sequence_length=None, trainable=True,
                           preprocessor=None, image_converter=None, loss="contrastive", temperature=None,
                           margin=0.2, learning_rate=1e-5, jit_compile="auto", name=None):
    """A ``DualEncoder`` whose towers are a KerasHub CLIP or SigLIP preset's image and text encoders.

    The towers compute the preset's own embeddings (its encoders, poolings
    and projection heads), L2-normalised in float32: zero-shot retrieval
    works before any training, and ``fit`` on ``{"image", "text"}`` pairs
    fine-tunes both towers with the in-batch contrastive loss. The image
    tower takes [0, 1] images and runs the preset's image converter inside
    the model; the text tower takes the preset tokenizer's ids. Freeze a
    tower with ``mmzoo.finetune.freeze(model, "image")`` (or ``"text"``) and
    re-compile; ``unfreeze`` reverses it.

    Args:
        preset_or_backbone: A KerasHub preset name (``"clip_vit_base_patch16"``,
            ``"siglip_base_patch16_224"``), a local preset folder
            (``save_to_preset`` output), or a ``keras_hub.models.CLIPBackbone``
            / ``SigLIPBackbone`` (used in place: its encoders are renamed
            ``image_backbone`` / ``text_backbone`` and get ``trainable``).
        image_shape: ``(height, width, 3)`` of the model's image input;
            ``None`` takes the vision encoder's. Other sizes are resized by
            the image converter (which needs an ``image_size`` then).
        sequence_length: Token ids per text; ``None`` takes the
            preprocessor's (CLIP 77, SigLIP 64). At most the text encoder's
            ``max_sequence_length``; SigLIP presets need exactly that length
            (its text tower pools the last position).
        trainable: Whether the two encoders' weights train (``False``: only
            the CLIP projections do; SigLIP then has nothing to train).
        preprocessor: A ``CLIPPreprocessor`` / ``SigLIPPreprocessor``;
            defaults to the preset's. It gives the tokenizer (and the image
            converter if the preset has no separate one).
        image_converter: A KerasHub ``ImageConverter``; defaults to the
            preset's (or ``preprocessor``'s).
        loss: ``"contrastive"`` (symmetric InfoNCE) or ``"triplet"``.
        temperature: Contrastive temperature; ``None`` takes the preset's
            learned one, ``1 / exp(logit_scale)`` of its CLIP/SigLIP head.
        margin: Triplet margin.
        learning_rate: Adam learning rate (small: the towers are pretrained).
        jit_compile: XLA switch for ``compile``.
        name: The model name; defaults to ``"clip_dual_encoder"`` /
            ``"siglip_dual_encoder"``.

    Returns:
        ``(model, tokenizer)``: a compiled ``mmzoo.retrieval.DualEncoder``
        (``model.image_encoder``: float32 ``(batch, H, W, 3)`` in [0, 1] ->
        ``(batch, dim)`` unit vectors; ``model.text_encoder``: int32
        ``(batch, sequence_length)`` ids -> ``(batch, dim)``), and a
        ``KerasHubPromptTokenizer`` for ``mmzoo.data.TextColumn`` (``None``
        when no preprocessor is known, e.g. a backbone object alone).

    Raises:
        ValueError: If ``preset_or_backbone`` is not a CLIP/SigLIP preset or
            backbone, no image converter is known, or another argument is
            invalid.
        ConnectionError: If a preset must be downloaded and cannot be.

    Example::

        from mmzoo.retrieval import keras_hub_dual_encoder
        model, tokenizer = keras_hub_dual_encoder("clip_vit_base_patch16", sequence_length=32)
        columns = {"image": data.ImageColumn("image", (224, 224, 3)), "text": data.TextColumn("annotation", tokenizer)}
        train = data.make_dataset(manifests["train"], columns, batch_size=64, shuffle=True)
        model.fit(train, epochs=1)
        mmzoo.export(model, "saved_models/clip_emoji", preprocessing=columns)
    """
    import keras_hub  # noqa: PLC0415

    from mmzoo.retrieval import DualEncoder  # noqa: PLC0415  (mmzoo.retrieval re-exports this module)

    backbone = resolve_backbone(preset_or_backbone, "a keras_hub CLIPBackbone/SigLIPBackbone")
    kind = _kind_of(backbone, 0)
    if kind is None:
        raise ValueError(
            f"`preset_or_backbone` must be a CLIP or SigLIP model (keras_hub CLIPBackbone/SigLIPBackbone); it is a "
            f"{type(backbone).__name__}. Received: preset_or_backbone={preset_or_backbone!r}"
        )
    if sequence_length is not None:
        check.positive_int("sequence_length", sequence_length)
    check.choice("loss", loss, {"contrastive", "triplet"})
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or not learning_rate > 0:
        raise ValueError(f"`learning_rate` must be a positive number. Received: learning_rate={learning_rate!r}")
    name = f"{kind.lower()}_dual_encoder" if name is None else name
    check.identifier("name", name)
    preset = preset_or_backbone if isinstance(preset_or_backbone, str) else None
    preprocessor_cls = _families()[kind][1]
    if preprocessor is None and preset is not None:
        preprocessor = load_preset_part("preprocessor", preset, preprocessor_cls)
    if preprocessor is not None and _kind_of(preprocessor, 1) != kind:
        raise ValueError(
            f"`preprocessor` must be a keras_hub {preprocessor_cls.__name__} for this {kind} backbone. "
            f"Received: preprocessor={preprocessor!r}"
        )
    if image_converter is None and preprocessor is not None:
        image_converter = preprocessor.image_converter
    if image_converter is None and preset is not None:
        image_converter = load_preset_part("image converter", preset, keras_hub.layers.ImageConverter)
    if not isinstance(image_converter, keras_hub.layers.ImageConverter):
        raise ValueError(
            "`image_converter` must be the keras_hub ImageConverter the backbone was trained with (a preset "
            "folder holds it in image_converter.json); none was found or given. "
            f"Received: image_converter={image_converter!r}"
        )
    vision, text = backbone.vision_encoder, backbone.text_encoder
    max_length = int(text.max_sequence_length)
    tokenizer = None
    if preprocessor is not None:
        tokenizer = KerasHubPromptTokenizer(preprocessor, sequence_length or min(preprocessor.sequence_length,
                                                                                  max_length))
        sequence_length = tokenizer.sequence_length
    sequence_length = sequence_length or max_length
    if sequence_length > max_length or (kind == "SigLIP" and sequence_length != max_length):
        need = "exactly" if kind == "SigLIP" else "at most"
        raise ValueError(
            f"`sequence_length` must be {need} the text encoder's max_sequence_length={max_length}. "
            f"Received: sequence_length={sequence_length}"
        )
    encoder_shape = tuple(vision.image_shape)
    image_shape = check.shape("image_shape", encoder_shape if image_shape is None else image_shape, 3)
    if image_shape[-1] != 3:
        raise ValueError(f"`image_shape` must be (height, width, 3) RGB. Received: image_shape={image_shape}")
    if image_converter.image_size is None and image_shape[:2] != encoder_shape[:2]:
        raise ValueError(
            f"`image_shape` must be the vision encoder's {encoder_shape} when the image converter does not resize. "
            f"Received: image_shape={image_shape}"
        )
    if temperature is None:
        temperature = _preset_temperature(backbone)

    for encoder, prefix in ((vision, "image"), (text, "text")):
        encoder.name = f"{prefix}_backbone"  # branch-prefixed, for mmzoo.finetune
        encoder.trainable = bool(trainable)

    images = keras.Input(image_shape, name="image")
    x = keras.layers.Rescaling(255.0, name="image_rescale")(images)  # KerasHub converters take [0, 255] images
    image_converter.name = "image_image_converter"
    x = vision({"images": image_converter(x)})
    token_ids = keras.Input((sequence_length,), dtype="int32", name="text")
    t = text({"token_ids": token_ids})
    if kind == "CLIP":
        x = SequencePooling("first", name="image_class_token")(_sequence(x))
        backbone.vision_projection.name = "image_projection"
        x = backbone.vision_projection(x)
        t = ArgmaxTokenPooling(name="text_end_token")([_sequence(t), token_ids])
        backbone.text_projection.name = "text_projection"
        t = backbone.text_projection(t)
    x = keras.layers.UnitNormalization(dtype="float32", name="image_l2_normalize")(x)
    t = keras.layers.UnitNormalization(dtype="float32", name="text_l2_normalize")(t)
    model = DualEncoder(
        keras.Model(images, x, name="image_encoder"), keras.Model(token_ids, t, name="text_encoder"),
        loss=loss, temperature=temperature, margin=margin, name=name,
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), jit_compile=jit_compile)
    return model, tokenizer
