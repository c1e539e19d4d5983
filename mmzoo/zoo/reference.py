"""The reference designs: classic multimodal architectures, fixed where unsound."""

from __future__ import annotations

import keras

from mmzoo import _validation as check
from mmzoo import branches, fusion, heads
from mmzoo.composition import compose
from mmzoo.datasets.emoji import GROUPS as EMOJI_GROUPS
from mmzoo.zoo.registry import register


def _classification_head(num_classes, class_names=None):
    """A sigmoid head for ``num_classes=1`` (binary), softmax otherwise."""
    if num_classes == 1:
        return heads.binary(class_names=class_names)
    return heads.multiclass(num_classes, top_k=min(5, max(1, num_classes - 1)), class_names=class_names)


def _modalities(modalities, available):
    """Returns ``modalities`` as a tuple in ``available``'s order; it must be a non-empty subset of ``available``."""
    selected = (modalities,) if isinstance(modalities, str) else modalities
    try:
        selected = tuple(selected)
    except TypeError:
        selected = ()
    if (not selected or not all(isinstance(m, str) for m in selected) or len(set(selected)) != len(selected)
            or not set(selected) <= set(available)):
        raise ValueError(
            f"`modalities` must be a non-empty subset of {available!r}. Received: modalities={modalities!r}"
        )
    return tuple(m for m in available if m in selected)


def _check_geometry(image_shape=None, sequence_length=None, vocabulary_size=None, num_samples=None,
                    sampling_rate=None):
    """Checks the input-geometry overrides by their zoo names (``Received: image_shape=...``)."""
    if image_shape is not None:
        check.shape("image_shape", image_shape, 3)
    for name, value in (("sequence_length", sequence_length), ("vocabulary_size", vocabulary_size),
                        ("num_samples", num_samples), ("sampling_rate", sampling_rate)):
        if value is not None:
            check.positive_int(name, value)


def _bert(text_source, sequence_length, vocabulary_size, hidden_dim, num_layers, num_heads, intermediate_dim,
          dropout=0.1):
    """``text_keras_hub(text_source)`` (pretrained), or a random-weight ``text_bert`` of the given size."""
    if text_source is not None:
        return branches.text_keras_hub(text_source, sequence_length=sequence_length, name="text")
    return branches.text_bert(
        sequence_length, vocabulary_size, hidden_dim, num_layers, num_heads, intermediate_dim, dropout, name="text"
    )


@register(
    "image_text_cnn",
    tiny={"image_shape": (32, 32, 3), "sequence_length": 16, "vocabulary_size": 100, "embedding_dim": 8,
          "image_filters": 4, "hidden": 8},
    modalities=("image", "text"),
)
def image_text_cnn(
    modalities=("image", "text"),
    image_shape=(224, 224, 3),
    sequence_length=100,
    vocabulary_size=10000,
    embedding_dim=64,
    image_filters=64,
    image_reduction="avg",
    hidden=128,
    learning_rate=1e-3,
    jit_compile="auto",
):
    """Image CNN + text embedding, concatenated, into a binary classifier.

    The reference design: image ``224x224x3 -> Conv2D(64, 3, relu) ->
    MaxPooling2D(2)``; text of 100 ids (vocabulary 10,000) ``->
    Embedding(64)``; both flattened and concatenated ``-> Dense(128, relu) ->
    Dense(1, sigmoid)``; Adam, binary cross-entropy, accuracy.

    Fix: flattening the 111x111x64 image map feeds 788,544 features into
    ``Dense(128)`` (~101M weights, ~400 MB, for one conv layer of signal). The
    default reduces the image map with global average pooling instead (64
    features); pass ``image_reduction="flatten"`` for the original. The text
    embedding stays flattened (6,400 features), as in the original.
    ``modalities=("image",)`` or ``("text",)`` gives the unimodal baseline of
    the same encoder.

    Args:
        modalities: Which inputs to use: ``("image", "text")`` or one of them.
        image_shape: Image input shape.
        sequence_length: Token ids per text.
        vocabulary_size: Vocabulary size.
        embedding_dim: Token embedding width.
        image_filters: Filters of the single Conv2D.
        image_reduction: ``"avg"`` (default), ``"max"`` or ``"flatten"`` (original).
        hidden: Width of the hidden Dense layer.
        learning_rate: Adam learning rate.
        jit_compile: XLA switch for ``compile``.

    Returns:
        A compiled binary classifier with inputs ``{"image", "text"}`` (those
        of ``modalities``).

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> import mmzoo
    >>> model = mmzoo.build("image_text_cnn")
    >>> model.count_params() < 2_000_000
    True
    >>> sorted(mmzoo.build("image_text_cnn", modalities=("text",)).input)
    ['text']
    """
    modalities = _modalities(modalities, ("image", "text"))
    _check_geometry(image_shape, sequence_length, vocabulary_size)
    parts = []
    if "image" in modalities:
        parts.append(branches.image_cnn(
            image_shape, filters=(image_filters,), kernel_size=3, pool_size=2, reduction=image_reduction, name="image"
        ))
    if "text" in modalities:
        parts.append(branches.text_embedding(
            sequence_length, vocabulary_size, embedding_dim, reduction="flatten", name="text"
        ))
    return compose(
        parts,
        fusion="concat",
        head=heads.binary(),
        hidden=(hidden,),
        name="image_text_cnn",
        learning_rate=learning_rate,
        jit_compile=jit_compile,
    )


@register(
    "image_text_audio_cnn_rnn_conv1d",
    tiny={"vocabulary_size": 100, "image_filters": 4, "text_units": 4, "audio_filters": 4, "hidden": (8, 8)},
    modalities=("image", "text", "audio"),
)
def image_text_audio_cnn_rnn_conv1d(
    modalities=("image", "text", "audio"),
    image_shape=(28, 28, 1),
    sequence_length=10,
    vocabulary_size=10000,
    num_samples=1000,
    image_filters=32,
    text_units=32,
    audio_filters=32,
    hidden=(128, 64),
    learning_rate=1e-3,
    jit_compile="auto",
):
    """Image CNN + text SimpleRNN + audio Conv1D, concatenated, into a binary classifier.

    The reference design: image ``28x28x1 -> Conv2D(32, 3, relu) ->
    MaxPooling2D(2)``; text of 10 ids (vocabulary 10,000) ``-> Embedding(32)
    -> SimpleRNN(32)``; audio of 1,000 samples ``-> Conv1D(32, 3, relu) ->
    MaxPooling1D(2)``; concatenated ``-> Dense(128, relu) -> Dense(64, relu)
    -> Dense(1, sigmoid)``.

    Fix: the original concatenates the 4-D image map ``(13, 13, 32)`` and the
    3-D audio map ``(499, 32)`` with the 2-D RNN state, which cannot run. Here
    both maps are flattened first (5,408 and 15,968 features), the smallest
    change that makes the design sound. The audio input is a ``(1000,)``
    waveform (the package's audio contract) rather than ``(1000, 1)``; the
    branch adds the channel axis itself. A subset of ``modalities`` gives the
    unimodal (or bimodal) baselines of the same encoders.

    Args:
        modalities: Which of ``("image", "text", "audio")`` to use.
        image_shape: Image input shape.
        sequence_length: Token ids per text.
        vocabulary_size: Vocabulary size.
        num_samples: Audio samples.
        image_filters: Conv2D filters.
        text_units: Embedding width and SimpleRNN units.
        audio_filters: Conv1D filters.
        hidden: Dense widths after fusion.
        learning_rate: Adam learning rate.
        jit_compile: XLA switch for ``compile``.

    Returns:
        A compiled binary classifier with inputs ``{"image", "text", "audio"}``
        (those of ``modalities``).

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> import mmzoo
    >>> model = mmzoo.build("image_text_audio_cnn_rnn_conv1d")
    >>> sorted(model.input)
    ['audio', 'image', 'text']
    """
    modalities = _modalities(modalities, ("image", "text", "audio"))
    _check_geometry(image_shape, sequence_length, vocabulary_size, num_samples)
    parts = []
    if "image" in modalities:
        parts.append(branches.image_cnn(image_shape, filters=(image_filters,), reduction="flatten", name="image"))
    if "text" in modalities:
        parts.append(branches.text_rnn(
            sequence_length, vocabulary_size, embedding_dim=text_units, rnn="simple", units=text_units, name="text"
        ))
    if "audio" in modalities:
        parts.append(branches.audio_conv1d(
            num_samples, filters=(audio_filters,), kernel_size=3, pool_size=2, reduction="flatten", name="audio"
        ))
    return compose(
        parts,
        fusion="concat",
        head=heads.binary(),
        hidden=hidden,
        name="image_text_audio_cnn_rnn_conv1d",
        learning_rate=learning_rate,
        jit_compile=jit_compile,
    )


_TINY_BERT = {"sequence_length": 16, "vocabulary_size": 100, "hidden_dim": 16, "num_layers": 1, "num_heads": 2,
              "intermediate_dim": 32}
# KerasHub's ResNetBackbone requires 64 filters in the first stage: a tiny ResNet has ~90k weights.
_TINY_RESNET = {"image_shape": (32, 32, 3), "resnet_stack_sizes": (1, 1), "resnet_filters": (64, 8)}


@register(
    "bert_resnet_concat",
    tiny={**_TINY_BERT, **_TINY_RESNET, "hidden": (8,)},
    modalities=("image", "text"),
)
def bert_resnet_concat(
    num_classes=2,
    modalities=("image", "text"),
    sequence_length=128,
    vocabulary_size=30522,
    hidden_dim=768,
    num_layers=12,
    num_heads=12,
    intermediate_dim=3072,
    image_shape=(224, 224, 3),
    resnet_stack_sizes=None,
    resnet_filters=None,
    hidden=(512,),
    dropout=0.1,
    learning_rate=2e-5,
    jit_compile="auto",
    text_source=None,
    image_source=None,
    image_weights=None,
):
    """BERT pooled output (768) + ResNet50 features (2048), concatenated, into a classifier.

    Text: a BERT-base-shaped ``keras_hub.models.BertBackbone``
    (``branches.text_bert``) whose tanh pooler output on ``[CLS]`` is the
    text feature. Image: ``keras.applications.ResNet50(weights=None,
    include_top=False, pooling="avg")`` with its ``preprocess_input`` inside
    the model (``branches.image_keras_app("ResNet50")``). Concatenated
    (2,816) ``-> Dense(hidden) -> Dropout ->`` softmax over ``num_classes``
    (sigmoid when ``num_classes=1``). Weights are random by default; the
    same builders load pretrained ones (``text_source``, ``image_source``,
    ``image_weights``). The small default learning rate (2e-5) is the
    fine-tuning rate BERT is trained at. ``modalities=("image",)`` or
    ``("text",)`` gives the unimodal baseline of the same encoder.

    Args:
        num_classes: Output classes (1 = binary sigmoid).
        modalities: Which inputs to use: ``("image", "text")`` or one of them.
        sequence_length: Token ids per text.
        vocabulary_size: WordPiece vocabulary size.
        hidden_dim: BERT width.
        num_layers: BERT layers.
        num_heads: BERT attention heads.
        intermediate_dim: BERT feed-forward width.
        image_shape: Image input shape.
        resnet_stack_sizes: ``None`` for ``keras.applications.ResNet50``; a
            tuple builds a KerasHub ResNet (``branches.image_resnet``) with
            bottleneck blocks of those stage depths instead (small ones for
            tests).
        resnet_filters: Base filters per stage when ``resnet_stack_sizes`` is
            set (the first must be 64; ``None``: 64, 128, 256, 512).
        hidden: Dense widths after fusion.
        dropout: Dropout in BERT and after each hidden layer.
        learning_rate: Adam learning rate.
        jit_compile: XLA switch for ``compile``.
        text_source: Pretrained BERT: a KerasHub preset name, local preset
            folder or backbone (``branches.text_keras_hub``); replaces the
            random-weight BERT (the size arguments are then the preset's).
        image_source: Pretrained ResNet: a KerasHub preset name, folder or
            backbone (``branches.image_keras_hub``).
        image_weights: ``"imagenet"`` or a weights-file path for the default
            ``keras.applications.ResNet50`` (``branches.image_keras_app``).

    Returns:
        A compiled classifier with inputs ``{"image", "text"}`` (those of
        ``modalities``).

    Raises:
        ValueError: If an argument is invalid.

    Example::

        model = mmzoo.build("bert_resnet_concat", num_classes=3)
        model = mmzoo.build("bert_resnet_concat", text_source="presets/bert_base_en_uncased",
                            image_weights="imagenet")
    """
    modalities = _modalities(modalities, ("image", "text"))
    _check_geometry(image_shape, sequence_length, vocabulary_size)
    parts = []
    if "text" in modalities:
        parts.append(_bert(text_source, sequence_length, vocabulary_size, hidden_dim, num_layers, num_heads,
                           intermediate_dim, dropout))
    if "image" in modalities:
        if image_source is not None:
            image = branches.image_keras_hub(image_source, image_shape, name="image")
        elif resnet_stack_sizes is not None:
            image = branches.image_resnet(
                image_shape, stackwise_num_blocks=resnet_stack_sizes, stackwise_num_filters=resnet_filters,
                block_type="bottleneck_block", name="image",
            )
        else:
            image = branches.image_keras_app("ResNet50", image_shape, weights=image_weights, name="image")
        parts.append(image)
    return compose(
        parts,
        fusion="concat",
        head=_classification_head(num_classes),
        hidden=hidden,
        dropout=dropout,
        name="bert_resnet_concat",
        learning_rate=learning_rate,
        jit_compile=jit_compile,
    )


@register(
    "bert_resnet_lstm_late_fusion",
    tiny={**_TINY_BERT, **_TINY_RESNET, "num_samples": 1024, "audio_units": 4, "hidden": 8},
    modalities=("image", "text", "audio"),
)
def bert_resnet_lstm_late_fusion(
    num_classes=3,
    modalities=("image", "text", "audio"),
    sequence_length=128,
    vocabulary_size=30522,
    hidden_dim=768,
    num_layers=12,
    num_heads=12,
    intermediate_dim=3072,
    image_shape=(224, 224, 3),
    resnet_stack_sizes=(2, 2, 2, 2),
    resnet_filters=(64, 128, 256, 512),
    num_samples=16000,
    sampling_rate=16000,
    audio_units=128,
    hidden=128,
    combine="sum",
    learning_rate=1e-4,
    jit_compile="auto",
    text_source=None,
    image_source=None,
):
    """Sentiment from text (BERT), image (ResNet18) and audio (2-layer LSTM) by late fusion.

    Each modality has its own classifier: ``BERT pooled -> Dense(128)``,
    ``ResNet18 -> Dense(128)``, ``log-mel -> LSTM(128) -> LSTM(128) ->
    Dense(128)``, each followed by its own output layer; the per-modality
    logits are summed (decision-level fusion) and a softmax gives the
    sentiment over ``num_classes`` (default 3: negative, neutral, positive).
    Summing logits (``combine="sum"``) multiplies the modalities'
    unnormalised class probabilities; ``"mean"`` and ``"weighted"`` are
    offered. BERT is a ``keras_hub.models.BertBackbone``
    (``branches.text_bert``), ResNet18 a ``keras_hub.models.ResNetBackbone``
    (``branches.image_resnet``), both random unless ``text_source`` /
    ``image_source`` name pretrained ones. A subset of ``modalities`` gives
    the unimodal (or bimodal) baselines of the same encoders.

    Args:
        num_classes: Sentiment classes.
        modalities: Which of ``("image", "text", "audio")`` to use.
        sequence_length: Token ids per text.
        vocabulary_size: WordPiece vocabulary size.
        hidden_dim: BERT width.
        num_layers: BERT layers.
        num_heads: BERT attention heads.
        intermediate_dim: BERT feed-forward width.
        image_shape: Image input shape.
        resnet_stack_sizes: Residual (basic) blocks per stage (ResNet18: 2, 2, 2, 2).
        resnet_filters: Base filters per stage (the first must be 64).
        num_samples: Audio samples.
        sampling_rate: Audio sampling rate (Hz).
        audio_units: Units of each LSTM layer.
        hidden: Width of each modality's Dense layer.
        combine: ``"sum"``, ``"mean"`` or ``"weighted"``.
        learning_rate: Adam learning rate.
        jit_compile: XLA switch for ``compile``.
        text_source: Pretrained BERT (KerasHub preset name, folder or
            backbone) replacing the random-weight one.
        image_source: Pretrained ResNet (KerasHub preset name, folder or
            backbone) replacing the random-weight ResNet18.

    Returns:
        A compiled classifier with inputs ``{"image", "text", "audio"}``
        (those of ``modalities``).

    Raises:
        ValueError: If an argument is invalid.

    Example::

        model = mmzoo.build("bert_resnet_lstm_late_fusion", num_classes=2)
        audio_only = mmzoo.build("bert_resnet_lstm_late_fusion", modalities=("audio",))
    """
    modalities = _modalities(modalities, ("image", "text", "audio"))
    _check_geometry(image_shape, sequence_length, vocabulary_size, num_samples, sampling_rate)
    parts = []
    if "text" in modalities:
        parts.append(_bert(text_source, sequence_length, vocabulary_size, hidden_dim, num_layers, num_heads,
                           intermediate_dim))
    if "image" in modalities:
        if image_source is not None:
            parts.append(branches.image_keras_hub(image_source, image_shape, name="image"))
        else:
            parts.append(branches.image_resnet(
                image_shape, stackwise_num_blocks=resnet_stack_sizes, stackwise_num_filters=resnet_filters,
                block_type="basic_block", name="image",
            ))
    if "audio" in modalities:
        parts.append(branches.audio_rnn(
            num_samples, sampling_rate, frame_length=min(512, num_samples),
            frame_step=256, rnn="lstm", units=audio_units, num_layers=2, name="audio",
        ))
    return compose(
        parts,
        fusion=fusion.late(combine),
        head=_classification_head(num_classes),
        hidden=(hidden,),
        name="bert_resnet_lstm_late_fusion",
        learning_rate=learning_rate,
        jit_compile=jit_compile,
    )


@register(
    "image_text_retrieval",
    tiny={"image_shape": (32, 32, 3), "image_filters": (4,), "sequence_length": 8, "vocabulary_size": 100,
          "text_dim": 8, "embedding_dim": 8},
    modalities=("image", "text"),
)
def image_text_retrieval(
    image_shape=(72, 72, 3),
    image_filters=(32, 64, 128),
    sequence_length=16,
    vocabulary_size=5000,
    text_dim=128,
    embedding_dim=128,
    loss="contrastive",
    temperature=0.05,
    margin=0.2,
    learning_rate=1e-3,
    jit_compile="auto",
):
    """Image-text dual encoder in one L2-normalised space (for retrieval).

    Image: ``image_cnn`` (global average pooled) ``-> Dense(embedding_dim) ->
    UnitNormalization``. Text: embedding + masked mean pooling ``->
    Dense(embedding_dim) -> UnitNormalization``. Trained with the in-batch
    symmetric contrastive loss (``loss="contrastive"``, temperature
    ``temperature``) or the triplet margin loss (``loss="triplet"``: image
    anchor, its text, every other text of the batch). The encoders are
    ``model.image_encoder`` / ``model.text_encoder`` for indexing and
    querying; ``mmzoo.retrieval.recall_at_k`` scores them. It needs both
    inputs (it maps one into the other), so it has no ``modalities`` argument.

    Args:
        image_shape: Image input shape.
        image_filters: Image CNN filters.
        sequence_length: Token ids per text.
        vocabulary_size: Vocabulary size.
        text_dim: Token embedding width.
        embedding_dim: Shared embedding width.
        loss: ``"contrastive"`` or ``"triplet"``.
        temperature: Contrastive temperature.
        margin: Triplet margin.
        learning_rate: Adam learning rate.
        jit_compile: XLA switch for ``compile``.

    Returns:
        A compiled ``mmzoo.retrieval.DualEncoder``; ``fit`` it on datasets of
        ``{"image", "text"}`` dicts of matching pairs (no labels).

    Example:

    >>> import mmzoo
    >>> model = mmzoo.build("image_text_retrieval", loss="triplet")
    >>> model.image_encoder.output.shape
    (None, 128)
    """
    from mmzoo.retrieval import DualEncoder  # noqa: PLC0415

    _check_geometry(image_shape, sequence_length, vocabulary_size)
    def project(branch):
        x = keras.layers.Dense(embedding_dim, name=f"{branch.name}_projection")(branch.features)
        x = keras.layers.UnitNormalization(dtype="float32", name=f"{branch.name}_l2_normalize")(x)
        return keras.Model(branch.input, x, name=f"{branch.name}_encoder")

    image = branches.image_cnn(image_shape, filters=image_filters, padding="same", reduction="avg", name="image")
    text = branches.text_embedding(sequence_length, vocabulary_size, text_dim, reduction="avg", name="text")
    model = DualEncoder(
        project(image), project(text), loss=loss, temperature=temperature, margin=margin, name="image_text_retrieval"
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), jit_compile=jit_compile)
    return model


@register(
    "emoji_cross_attention",
    tiny={"image_shape": (32, 32, 3), "image_filters": (4,), "sequence_length": 8, "vocabulary_size": 100,
          "embedding_dim": 8, "units": 8, "num_heads": 2, "hidden": (8,)},
    modalities=("image", "text"),
)
def emoji_cross_attention(
    num_classes=11,
    modalities=("image", "text"),
    image_shape=(72, 72, 3),
    image_filters=(32, 64, 128),
    sequence_length=32,
    vocabulary_size=4000,
    embedding_dim=64,
    units=64,
    num_heads=4,
    hidden=(64,),
    dropout=0.2,
    learning_rate=1e-3,
    jit_compile="auto",
):
    """Image regions and text tokens attend to each other (cross-modal attention) -> emoji group.

    The cross-attention of the BERT + ResNet design at OpenMoji size
    (``mmzoo.datasets.emoji_groups``: 72x72 emoji + annotation/tags text ->
    11 groups). Image: ``image_cnn`` (``same`` padding, one Conv2D/MaxPool
    block per ``image_filters``), whose last map is ``(72 / 2^k)^2`` regions
    (81 of width 128 by default). Text: token embeddings of
    ``sequence_length`` ids (padding 0 masked). ``fusion.cross_attention``:
    the tokens attend to the regions and the regions to the tokens
    (``num_heads`` heads, ``softmax(Q K^T / sqrt(d)) V``), each direction
    mean-pooled over its valid steps and the two summed (``units``) ``->
    Dense(hidden) -> softmax`` over ``num_classes``. ``modalities=("image",)``
    or ``("text",)`` gives the unimodal baseline of the same encoder (the
    image map globally average-pooled, the token embeddings mean-pooled over
    non-padding tokens).

    Args:
        num_classes: Output classes (1 = binary sigmoid); 11 emoji groups by default.
        modalities: Which inputs to use: ``("image", "text")`` or one of them.
        image_shape: Image input shape.
        image_filters: Filters of the image CNN blocks.
        sequence_length: Token ids per text.
        vocabulary_size: Vocabulary size (id 0 is padding).
        embedding_dim: Token embedding width.
        units: Width of the attention outputs (the fused width).
        num_heads: Attention heads.
        hidden: Dense widths after fusion.
        dropout: Dropout after each hidden layer.
        learning_rate: Adam learning rate.
        jit_compile: XLA switch for ``compile``.

    Returns:
        A compiled classifier with inputs ``{"image", "text"}`` (those of
        ``modalities``).

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> import mmzoo
    >>> model = mmzoo.build("emoji_cross_attention")
    >>> type(model.get_layer("fusion")).__name__, model.output.shape
    ('CrossModalAttention', (None, 11))
    >>> sorted(mmzoo.build("emoji_cross_attention", modalities=("text",)).input)
    ['text']
    """
    modalities = _modalities(modalities, ("image", "text"))
    _check_geometry(image_shape, sequence_length, vocabulary_size)
    check.positive_int("num_classes", num_classes)
    parts = []
    if "image" in modalities:
        parts.append(branches.image_cnn(image_shape, filters=image_filters, padding="same", name="image"))
    if "text" in modalities:
        parts.append(branches.text_embedding(sequence_length, vocabulary_size, embedding_dim, name="text"))
    return compose(
        parts,
        fusion=fusion.cross_attention(units=units, num_heads=num_heads),
        head=_classification_head(num_classes, EMOJI_GROUPS if num_classes == len(EMOJI_GROUPS) else None),
        hidden=hidden,
        dropout=dropout,
        name="emoji_cross_attention",
        learning_rate=learning_rate,
        jit_compile=jit_compile,
    )
