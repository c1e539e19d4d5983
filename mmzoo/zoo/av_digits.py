"""Zoo models for the embedded AV-digits task (MNIST image + spoken digit)."""

from __future__ import annotations

from mmzoo import _validation as check
from mmzoo import branches, heads
from mmzoo import fusion as fusion_lib
from mmzoo.composition import compose
from mmzoo.datasets import av_digits_recipe as data
from mmzoo.zoo.registry import register

# The log-mel CNN at half the image CNN's width: its second convolution was two thirds of the model's
# multiply-adds at (32, 64). Measured (benchmarks/throughput.py, 3 runs): 1.13x-1.66x the examples/s, and
# as accurate (main-job setting, 3 seeds: 0.920 against 0.908 for av_digits_concat).
AUDIO_FILTERS = (16, 32)
# av_digits_robust must also answer from the audio alone, which the narrower CNN does less well (image absent,
# benchmarks/fusion.py, 3 seeds: 0.684 against audio-only 0.716 at (16, 32), 3.2 points short; 2.4 at (32, 64)).
ROBUST_AUDIO_FILTERS = (32, 64)
_TINY = {"image_filters": (4,), "audio_filters": (4,), "hidden": (8,)}


def _av_digits(
    name, fusion, modalities, image_shape, num_samples, sampling_rate, image_filters, audio_filters, hidden, dropout,
    learning_rate, jit_compile, level="rms", balance=None,
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
                num_samples, sampling_rate, filters=audio_filters, reduction="flatten", name="audio", level=level
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
        **(balance if len(parts) > 1 and balance else {}),
    )


@register("av_digits_concat", tiny=_TINY, modalities=("image", "audio"))
def av_digits_concat(
    modalities=("image", "audio"),
    image_shape=data.IMAGE_SHAPE,
    num_samples=data.NUM_SAMPLES,
    sampling_rate=data.SAMPLE_RATE,
    image_filters=(32, 64),
    audio_filters=AUDIO_FILTERS,
    hidden=(64,),
    dropout=0.2,
    learning_rate=1e-3,
    jit_compile="auto",
    level="rms",
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
        level: Level normalisation of the waveform before the log-mel:
            ``"rms"`` (default: each recording scaled to the same RMS, so a
            quieter or louder recording gets the same answer), ``"peak"`` or
            ``None`` (see ``mmzoo.branches.audio.spectrogram_frontend``).

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
        audio_filters, hidden, dropout, learning_rate, jit_compile, level=level,
    )


@register("av_digits_attention", tiny={**_TINY, "units": 8}, modalities=("image", "audio"))
def av_digits_attention(
    modalities=("image", "audio"),
    image_shape=data.IMAGE_SHAPE,
    num_samples=data.NUM_SAMPLES,
    sampling_rate=data.SAMPLE_RATE,
    image_filters=(32, 64),
    audio_filters=AUDIO_FILTERS,
    units=128,
    hidden=(64,),
    dropout=0.2,
    learning_rate=1e-3,
    jit_compile="auto",
    level="rms",
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
        level: Level normalisation of the waveform before the log-mel:
            ``"rms"`` (default: each recording scaled to the same RMS, so a
            quieter or louder recording gets the same answer), ``"peak"`` or
            ``None`` (see ``mmzoo.branches.audio.spectrogram_frontend``).

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
        level=level,
    )


@register("av_digits_gmu", tiny={**_TINY, "units": 8}, modalities=("image", "audio"))
def av_digits_gmu(
    modalities=("image", "audio"),
    image_shape=data.IMAGE_SHAPE,
    num_samples=data.NUM_SAMPLES,
    sampling_rate=data.SAMPLE_RATE,
    image_filters=(32, 64),
    audio_filters=AUDIO_FILTERS,
    units=128,
    hidden=(64,),
    dropout=0.2,
    learning_rate=1e-3,
    jit_compile="auto",
    level="rms",
):
    """AV-digits with a Gated Multimodal Unit fusion (per-unit gates between image and audio).

    The same encoders as ``av_digits_concat``; each flattened modality gets
    a ``tanh`` projection to ``units`` and a sigmoid gate computed from both
    picks, per example and per unit, how much of each to keep
    (``fusion.gated``, Arevalo et al. 2017). Read the mean gate per modality
    with ``model.get_layer("fusion").gate_values(features)``. The input
    geometry and the modalities are overrides, as in ``av_digits_concat``;
    with a single modality the model is that modality's encoder and head.

    Args:
        modalities: Which inputs to use.
        image_shape: ``(height, width, channels)`` of the image input, values in [0, 1].
        num_samples: Samples per audio waveform (the audio input's length).
        sampling_rate: Sampling rate of the waveform in Hz (sets the mel scale).
        image_filters: Filters of the image CNN blocks.
        audio_filters: Filters of the spectrogram CNN blocks.
        units: Width of the gated projections (the fused width).
        hidden: Dense widths after fusion.
        dropout: Dropout after each hidden layer.
        learning_rate: Adam learning rate.
        jit_compile: XLA switch for ``compile``.
        level: Per-utterance waveform level normalisation of the audio branch
            (``"rms"`` or ``None``).

    Returns:
        A compiled ``keras.Model`` with dict inputs named by ``modalities``.

    Example:

    >>> import mmzoo
    >>> model = mmzoo.build("av_digits_gmu", image_filters=(4,), audio_filters=(4,), units=8)
    >>> type(model.get_layer("fusion")).__name__, model.get_layer("fusion").output.shape
    ('GatedFusion', (None, 8))
    """
    return _av_digits(
        "av_digits_gmu", fusion_lib.gated(units=units), modalities, image_shape, num_samples, sampling_rate,
        image_filters, audio_filters, hidden, dropout, learning_rate, jit_compile, level=level,
    )


@register("av_digits_lmf", tiny={**_TINY, "units": 8, "rank": 2}, modalities=("image", "audio"))
def av_digits_lmf(
    modalities=("image", "audio"),
    image_shape=data.IMAGE_SHAPE,
    num_samples=data.NUM_SAMPLES,
    sampling_rate=data.SAMPLE_RATE,
    image_filters=(32, 64),
    audio_filters=AUDIO_FILTERS,
    units=32,
    rank=4,
    hidden=(64,),
    dropout=0.2,
    learning_rate=1e-3,
    jit_compile="auto",
    level="rms",
):
    """AV-digits with Low-rank Multimodal Fusion (multiplicative image x audio interactions).

    The same encoders as ``av_digits_concat``; the flattened modalities are
    fused by ``fusion.low_rank`` (Liu et al. 2018): ``sum_r prod_i ([x_i; 1]
    W_i^r)``, every product of an image and an audio feature (and each
    alone) through rank-``rank`` factors, ``rank * (1601 + 5121) * units``
    weights (860,160 with the defaults). The input geometry and the
    modalities are overrides, as in ``av_digits_concat``; with a single
    modality the model is that modality's encoder and head.

    Args:
        modalities: Which inputs to use.
        image_shape: ``(height, width, channels)`` of the image input, values in [0, 1].
        num_samples: Samples per audio waveform (the audio input's length).
        sampling_rate: Sampling rate of the waveform in Hz (sets the mel scale).
        image_filters: Filters of the image CNN blocks.
        audio_filters: Filters of the spectrogram CNN blocks.
        units: Fused width.
        rank: Rank of the fusion tensor (factor sets).
        hidden: Dense widths after fusion.
        dropout: Dropout after each hidden layer.
        learning_rate: Adam learning rate.
        jit_compile: XLA switch for ``compile``.
        level: Per-utterance waveform level normalisation of the audio branch
            (``"rms"`` or ``None``).

    Returns:
        A compiled ``keras.Model`` with dict inputs named by ``modalities``.

    Example:

    >>> import mmzoo
    >>> model = mmzoo.build("av_digits_lmf", image_filters=(4,), audio_filters=(4,), units=8, rank=2)
    >>> type(model.get_layer("fusion")).__name__, model.get_layer("fusion").output.shape
    ('LowRankFusion', (None, 8))
    """
    return _av_digits(
        "av_digits_lmf", fusion_lib.low_rank(units=units, rank=rank), modalities, image_shape, num_samples,
        sampling_rate, image_filters, audio_filters, hidden, dropout, learning_rate, jit_compile, level=level,
    )


@register("av_digits_robust", tiny=_TINY, modalities=("image", "audio"))
def av_digits_robust(
    modalities=("image", "audio"),
    image_shape=data.IMAGE_SHAPE,
    num_samples=data.NUM_SAMPLES,
    sampling_rate=data.SAMPLE_RATE,
    image_filters=(32, 64),
    audio_filters=ROBUST_AUDIO_FILTERS,
    hidden=(64,),
    dropout=0.2,
    modality_dropout=0.5,
    auxiliary_loss_weight=0.5,
    learning_rate=1e-3,
    jit_compile="auto",
    level="rms",
):
    """AV-digits that answers with a modality missing: concat + modality dropout + auxiliary unimodal losses.

    The encoders of ``av_digits_concat``; at train time a whole modality is
    dropped per example with probability ``modality_dropout`` and each branch
    also learns the task alone (``auxiliary_loss_weight``), so an absent
    modality (an all-zeros input; an empty string in the export's
    ``serving_raw``) costs little. Measured (embedded AV-digits, 15 epochs,
    seeds 0-2): 0.916 with both modalities, 0.712 with the image absent
    (audio-only model: 0.736), 0.780 with the audio absent (image-only:
    0.797). A ``mmzoo.balance.FusionModel``.

    Args:
        modalities: Which inputs to use.
        image_shape: ``(height, width, channels)`` of the image input, values in [0, 1].
        num_samples: Samples per audio waveform (the audio input's length).
        sampling_rate: Sampling rate of the waveform in Hz (sets the mel scale).
        image_filters: Filters of the image CNN blocks.
        audio_filters: Filters of the spectrogram CNN blocks.
        hidden: Dense widths after fusion.
        dropout: Dropout after each hidden layer.
        modality_dropout: Rate of whole-modality dropout at train time.
        auxiliary_loss_weight: Weight of the auxiliary unimodal losses.
        learning_rate: Adam learning rate.
        jit_compile: XLA switch for ``compile``.
        level: Per-utterance waveform level normalisation of the audio branch
            (``"rms"`` or ``None``).

    Returns:
        A compiled model with dict inputs named by ``modalities`` (a
        ``FusionModel`` with both modalities).

    Example:

    >>> import mmzoo
    >>> model = mmzoo.build("av_digits_robust", image_filters=(4,), audio_filters=(4,), hidden=(8,))
    >>> type(model).__name__, mmzoo.balance.optional_inputs(model)
    ('FusionModel', ['audio', 'image'])
    """
    return _av_digits(
        "av_digits_robust", "concat", modalities, image_shape, num_samples, sampling_rate, image_filters,
        audio_filters, hidden, dropout, learning_rate, jit_compile, level=level,
        balance={"modality_dropout": modality_dropout, "auxiliary_loss_weight": auxiliary_loss_weight},
    )
