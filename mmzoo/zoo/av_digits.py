"""Zoo models for the embedded AV-digits task (MNIST image + spoken digit)."""

from __future__ import annotations

from mmzoo import _validation as check
from mmzoo import branches, fusion as fusion_lib, heads
from mmzoo.composition import compose
from mmzoo.datasets import av_digits_recipe as data
from mmzoo.zoo.registry import register

_TINY = {"image_filters": (4,), "audio_filters": (4,), "hidden": (8,)}


def _av_digits(name, fusion, modalities, image_filters, audio_filters, hidden, dropout, learning_rate, jit_compile):
    modalities = tuple(modalities) if not isinstance(modalities, str) else (modalities,)
    if not modalities or any(m not in ("image", "audio") for m in modalities) or len(set(modalities)) != len(modalities):
        raise ValueError(
            f"`modalities` must be a non-empty subset of ('image', 'audio'). Received: modalities={modalities!r}"
        )
    parts = []
    if "image" in modalities:
        parts.append(branches.image_cnn(data.IMAGE_SHAPE, filters=image_filters, reduction="flatten", name="image"))
    if "audio" in modalities:
        parts.append(
            branches.audio_spectrogram_cnn(
                data.NUM_SAMPLES, data.SAMPLE_RATE, filters=audio_filters, reduction="flatten", name="audio"
            )
        )
    check.positive_ints("hidden", hidden, allow_empty=True)
    return compose(
        parts,
        fusion=fusion,
        head=heads.multiclass(data.NUM_CLASSES, top_k=3, class_names=data.CLASS_NAMES),
        hidden=hidden,
        dropout=dropout,
        name=name,
        learning_rate=learning_rate,
        jit_compile=jit_compile,
    )


@register("av_digits_concat", tiny=_TINY, modalities=("image", "audio"))
def av_digits_concat(
    modalities=("image", "audio"),
    image_filters=(32, 64),
    audio_filters=(32, 64),
    hidden=(64,),
    dropout=0.2,
    learning_rate=1e-3,
    jit_compile="auto",
):
    """AV-digits, concatenation fusion: image CNN + log-mel CNN -> 10 digits (the default model).

    image ``(28, 28, 1)`` -> ``image_cnn`` (Conv2D/MaxPool x2, flattened);
    audio ``(4000,)`` at 8 kHz -> log-mel (40 bands) -> Conv2D/MaxPool x2,
    flattened; concatenated -> ``Dense(hidden)`` -> softmax over 10 digits.
    With ``modalities=("image",)`` or ``("audio",)`` it is the unimodal
    baseline of the same encoder.

    Args:
        modalities: Which inputs to use.
        image_filters: Filters of the image CNN blocks.
        audio_filters: Filters of the spectrogram CNN blocks.
        hidden: Dense widths after fusion.
        dropout: Dropout after each hidden layer.
        learning_rate: Adam learning rate.
        jit_compile: XLA switch for ``compile``.

    Returns:
        A compiled ``keras.Model`` with inputs ``{"image", "audio"}``.

    Example:

    >>> model = mmzoo.build("av_digits_concat")
    >>> train_ds, test_ds = mmzoo.datasets.av_digits()
    >>> model.fit(train_ds, epochs=10)
    """
    return _av_digits(
        "av_digits_concat", "concat", modalities, image_filters, audio_filters, hidden, dropout, learning_rate, jit_compile
    )


@register("av_digits_attention", tiny={**_TINY, "units": 8}, modalities=("image", "audio"))
def av_digits_attention(
    image_filters=(32, 64),
    audio_filters=(32, 64),
    units=128,
    hidden=(64,),
    dropout=0.2,
    learning_rate=1e-3,
    jit_compile="auto",
):
    """AV-digits with per-example modality attention fusion (weights readable per batch).

    The same encoders as ``av_digits_concat``; each modality is projected to
    ``units`` and ``fusion.attention`` weighs them per example. Read the
    weights with ``mmzoo.fusion.attention_weights(model, inputs)``.

    Args:
        image_filters: Filters of the image CNN blocks.
        audio_filters: Filters of the spectrogram CNN blocks.
        units: Common projection width of the modalities.
        hidden: Dense widths after fusion.
        dropout: Dropout after each hidden layer.
        learning_rate: Adam learning rate.
        jit_compile: XLA switch for ``compile``.

    Returns:
        A compiled ``keras.Model`` with inputs ``{"image", "audio"}``.

    Example:

    >>> model = mmzoo.build("av_digits_attention")
    """
    return _av_digits(
        "av_digits_attention",
        fusion_lib.attention(units=units),
        ("image", "audio"),
        image_filters,
        audio_filters,
        hidden,
        dropout,
        learning_rate,
        jit_compile,
    )
