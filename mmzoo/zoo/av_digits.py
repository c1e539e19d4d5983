"""Zoo models for the embedded AV-digits task (MNIST image + spoken digit)."""

from __future__ import annotations

from mmzoo import _validation as check
from mmzoo import branches, heads
from mmzoo import fusion as fusion_lib
from mmzoo.composition import compose
from mmzoo.datasets import av_digits_recipe as data
from mmzoo.zoo.registry import register

_TINY = {"image_filters": (4,), "audio_filters": (4,), "hidden": (8,)}


def _av_digits(
    name, fusion, modalities, image_shape, num_samples, sampling_rate, image_filters, audio_filters, hidden, dropout,
    learning_rate, jit_compile,
):
    modalities = tuple(modalities) if not isinstance(modalities, str) else (modalities,)
    if (
        not modalities
        or any(m not in ("image", "audio") for m in modalities)
        or len(set(modalities)) != len(modalities)
    ):
        raise ValueError(
            f"`modalities` must be a non-empty subset of ('image', 'audio'). Received: modalities={modalities!r}"
        )
    image_shape = check.shape("image_shape", image_shape, 3)
    num_samples = check.positive_int("num_samples", num_samples)
    sampling_rate = check.positive_int("sampling_rate", sampling_rate)
    parts = []
    if "image" in modalities:
        parts.append(branches.image_cnn(image_shape, filters=image_filters, reduction="flatten", name="image"))
    if "audio" in modalities:
        parts.append(
            branches.audio_spectrogram_cnn(
                num_samples, sampling_rate, filters=audio_filters, reduction="flatten", name="audio"
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
    image_shape=data.IMAGE_SHAPE,
    num_samples=data.NUM_SAMPLES,
    sampling_rate=data.SAMPLE_RATE,
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
    baseline of the same encoder. The input geometry is an override: e.g.
    ``num_samples=8000, sampling_rate=8000`` for 1-second clips at 8 kHz,
    ``image_shape=(32, 32, 3)`` for colour images. The head carries the class
    names ``"0"``..``"9"`` into saved models and exports.

    Args:
        modalities: Which inputs to use.
        image_shape: ``(height, width, channels)`` of the image input, values in [0, 1].
        num_samples: Samples per audio waveform (the audio input's length).
        sampling_rate: Sampling rate of the waveform in Hz (sets the mel scale).
        image_filters: Filters of the image CNN blocks.
        audio_filters: Filters of the spectrogram CNN blocks.
        hidden: Dense widths after fusion.
        dropout: Dropout after each hidden layer.
        learning_rate: Adam learning rate.
        jit_compile: XLA switch for ``compile``.

    Returns:
        A compiled ``keras.Model`` with dict inputs named by ``modalities``:
        ``"image"`` float32 ``(None, *image_shape)``, ``"audio"`` float32
        ``(None, num_samples)``; output: softmax over the 10 digits.

    Example::

        model = mmzoo.build("av_digits_concat")
        train_ds, test_ds = mmzoo.datasets.av_digits()
        model.fit(train_ds, epochs=10)
        # 1-second clips at 8 kHz:
        model = mmzoo.build("av_digits_concat", num_samples=8000, sampling_rate=8000)
    """
    return _av_digits(
        "av_digits_concat", "concat", modalities, image_shape, num_samples, sampling_rate, image_filters,
        audio_filters, hidden, dropout, learning_rate, jit_compile,
    )


@register("av_digits_attention", tiny={**_TINY, "units": 8}, modalities=("image", "audio"))
def av_digits_attention(
    modalities=("image", "audio"),
    image_shape=data.IMAGE_SHAPE,
    num_samples=data.NUM_SAMPLES,
    sampling_rate=data.SAMPLE_RATE,
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
    weights with ``mmzoo.fusion.attention_weights(model, inputs)``. The
    input geometry and the modalities are overrides, as in
    ``av_digits_concat``; with a single modality there is nothing to weigh
    and the model is that modality's encoder and head (no fusion layer).

    Args:
        modalities: Which inputs to use.
        image_shape: ``(height, width, channels)`` of the image input, values in [0, 1].
        num_samples: Samples per audio waveform (the audio input's length).
        sampling_rate: Sampling rate of the waveform in Hz (sets the mel scale).
        image_filters: Filters of the image CNN blocks.
        audio_filters: Filters of the spectrogram CNN blocks.
        units: Common projection width of the modalities.
        hidden: Dense widths after fusion.
        dropout: Dropout after each hidden layer.
        learning_rate: Adam learning rate.
        jit_compile: XLA switch for ``compile``.

    Returns:
        A compiled ``keras.Model`` with dict inputs named by ``modalities``.

    Example:

    >>> import mmzoo
    >>> model = mmzoo.build("av_digits_attention", image_filters=(4,), audio_filters=(4,), units=8)
    >>> sorted(model.input)
    ['audio', 'image']
    >>> sorted(mmzoo.build("av_digits_attention", modalities=("image",), image_filters=(4,)).input)
    ['image']
    """
    return _av_digits(
        "av_digits_attention",
        fusion_lib.attention(units=units),
        modalities,
        image_shape,
        num_samples,
        sampling_rate,
        image_filters,
        audio_filters,
        hidden,
        dropout,
        learning_rate,
        jit_compile,
    )
