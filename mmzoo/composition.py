"""``compose``: branches + fusion + head -> a ``keras.Model`` with dict inputs."""

from __future__ import annotations

import warnings

import keras

from mmzoo import _validation as check
from mmzoo import balance as balance_lib
from mmzoo import fusion as fusion_lib
from mmzoo import heads as heads_lib
from mmzoo.branches.base import Branch

# A model above this many weights gets one ``LargeModelWarning`` from ``compose``.
LARGE_MODEL_PARAMS = 20_000_000


class LargeModelWarning(UserWarning):
    """``compose`` built a model with more than ``LARGE_MODEL_PARAMS`` weights (often by accident)."""


def compose(
    branches,
    fusion="concat",
    head=None,
    hidden=(128,),
    dropout=0.0,
    activation="relu",
    name="mmzoo_model",
    compile=True,
    optimizer=None,
    learning_rate=1e-3,
    jit_compile="auto",
    modality_dropout=0.0,
    auxiliary_loss_weight=None,
    gradient_modulation=None,
    modulation_alpha=0.5,
):
    """Joins branch encoders with a fusion and a task head into one model.

    Early/intermediate fusion (``concat``, ``add``, ``multiply``,
    ``weighted_sum``, ``attention``) builds
    ``branches -> fusion -> Dense(hidden...) -> head``. Late fusion
    (``fusion.late(...)``) builds, per branch, ``Dense(hidden...) -> output
    logits`` and combines the logits before the head's activation.

    Args:
        branches: A list of ``Branch`` objects with distinct names.
        fusion: A fusion layer from ``mmzoo.fusion`` or its name (default
            ``"concat"``). Ignored for a single branch.
        head: A head from ``mmzoo.heads``; defaults to ``heads.binary()``.
        hidden: Widths of the Dense layers between fusion and output (``()``
            for none).
        dropout: Dropout rate after each hidden layer.
        activation: Activation of the hidden layers.
        name: Model name.
        compile: Compile with the head's loss and metrics (default). Pass
            ``False`` to compile yourself.
        optimizer: Optimizer for ``compile``; defaults to
            ``keras.optimizers.Adam(learning_rate)``.
        learning_rate: Learning rate of the default optimizer.
        jit_compile: Passed to ``model.compile`` (``True`` forces XLA).
        modality_dropout: Rate at which a whole modality's features are
            zeroed per example at train time (``mmzoo.balance.ModalityDropout``).
            Any of the three options below also makes the model read an
            all-zeros input as an absent modality, at train and predict time.
        auxiliary_loss_weight: Weight of the auxiliary unimodal losses (one
            head per branch on its own features; see ``mmzoo.balance``).
        gradient_modulation: ``"ogm"`` or ``"ogm_ge"``: On-the-fly Gradient
            Modulation of the dominant modality's encoder (classification heads).
        modulation_alpha: Strength of the gradient modulation.

    Returns:
        A functional ``keras.Model`` whose inputs are a dict keyed by branch
        name and whose output is the head's activation (float32): a
        ``mmzoo.heads.HeadActivation`` layer named ``"output"`` that carries
        the head (kind, class names, threshold) into saved models and exports
        (``mmzoo.heads.from_model(model)``). With ``auxiliary_loss_weight``
        or ``gradient_modulation`` it is a ``mmzoo.balance.FusionModel``,
        whose ``fit`` applies them. A model with more than 20M
        weights gets one ``LargeModelWarning`` naming its largest layer.

    Raises:
        ValueError: If ``branches`` is empty, holds something that is not a
            ``Branch``, or repeats a name; or another argument is invalid.

    Example:

    >>> import mmzoo
    >>> from mmzoo import branches, fusion, heads
    >>> image = branches.image_cnn((28, 28, 1), filters=(8,), name="image")
    >>> audio = branches.audio_spectrogram_cnn(num_samples=4000, sampling_rate=8000, filters=(8,), name="audio")
    >>> model = mmzoo.compose([image, audio], fusion=fusion.attention(), head=heads.multiclass(10))
    >>> sorted(model.input)
    ['audio', 'image']
    """
    if isinstance(branches, Branch):
        branches = [branches]
    branches = list(branches) if isinstance(branches, (list, tuple)) else None
    if not branches:
        raise ValueError("`branches` must be a non-empty list of Branch objects (see mmzoo.branches).")
    for b in branches:
        if not isinstance(b, Branch):
            raise ValueError(f"Every entry of `branches` must be a Branch. Received: {b!r}")
    names = [b.name for b in branches]
    if len(set(names)) != len(names):
        raise ValueError(f"Branch names must be distinct (they key the input dict). Received: {names}")
    head = heads_lib.binary() if head is None else head
    if not isinstance(head, heads_lib.Head):
        raise ValueError(f"`head` must be a head from mmzoo.heads. Received: head={head!r}")
    fusion_layer = fusion_lib.get(fusion)
    hidden = check.positive_ints("hidden", hidden, allow_empty=True)
    dropout = check.fraction("dropout", dropout)

    def dense_stack(x, prefix):
        for i, width in enumerate(hidden, start=1):
            x = keras.layers.Dense(width, activation=activation, name=f"{prefix}_dense{i}")(x)
            if dropout:
                x = keras.layers.Dropout(dropout, name=f"{prefix}_dropout{i}")(x)
        return x

    modality_dropout = check.fraction("modality_dropout", modality_dropout)
    balanced = auxiliary_loss_weight is not None or gradient_modulation is not None
    if (balanced or modality_dropout) and len(branches) < 2:
        raise ValueError("modality_dropout, auxiliary_loss_weight and gradient_modulation need two or more branches.")
    features = [b.features for b in branches]
    if balanced or modality_dropout:
        gate = balance_lib.ModalityDropout(modality_dropout, name="modality_dropout")
        features = gate([*features, *(b.input for b in branches)])
    if isinstance(fusion_layer, fusion_lib.LateFusion):
        logits = [head.logits(dense_stack(x, b.name), name=b.name) for x, b in zip(features, branches)]
        combined = fusion_layer(logits) if len(logits) > 1 else logits[0]
        outputs = head.activate(combined)
    else:
        fused = _fuse(fusion_layer, branches, features)
        outputs = head(dense_stack(fused, "head"))

    model_class = balance_lib.FusionModel if balanced else keras.Model
    model = model_class(inputs={b.name: b.input for b in branches}, outputs=outputs, name=name)
    if balanced:
        model.configure_balance(
            names, auxiliary_loss_weight=auxiliary_loss_weight or 0.0, gradient_modulation=gradient_modulation,
            modulation_alpha=modulation_alpha,
        )
    warn_if_large(model)
    if compile:
        compile_model(model, head, optimizer=optimizer, learning_rate=learning_rate, jit_compile=jit_compile)
    return model


def _fuse(fusion_layer, branches, features):
    """Applies an early/intermediate ``fusion_layer``: to ``features``, or to the branches' sequences.

    A fusion with ``uses_sequences = True`` (``fusion.cross_attention``) is
    called on the branches' ``sequence`` tensors with
    ``masks=[sequence_mask, ...]``; any other on ``features``. A single
    branch is not fused (its features pass through).

    Raises:
        ValueError: If a sequence fusion gets a branch without a ``sequence``.
    """
    if len(branches) == 1:
        return features[0]
    if not getattr(fusion_layer, "uses_sequences", False):
        return fusion_layer(features)
    for b in branches:
        if b.sequence is None:
            raise ValueError(
                f"{type(fusion_layer).__name__} fuses the branches' sequences, but branch '{b.name}' "
                f"({b.modality}) has none (its builder gives no per-step outputs). Use branches with a "
                "`sequence` (e.g. text_embedding, text_transformer, image_cnn) or another fusion."
            )
    return fusion_layer([b.sequence for b in branches], masks=[b.sequence_mask for b in branches])


def compile_model(model, head, optimizer=None, learning_rate=1e-3, jit_compile="auto", **kwargs):
    """Compiles ``model`` with ``head``'s default loss and metrics.

    Args:
        model: A Keras model.
        head: The head the model ends in.
        optimizer: An optimizer; defaults to ``Adam(learning_rate)``.
        learning_rate: Learning rate of the default optimizer.
        jit_compile: XLA switch passed to ``model.compile``.
        **kwargs: Further ``model.compile`` arguments (e.g. ``steps_per_execution``).

    Returns:
        The model, compiled.
    """
    optimizer = optimizer or keras.optimizers.Adam(learning_rate)
    model.compile(optimizer=optimizer, loss=head.loss, metrics=head.metrics(), jit_compile=jit_compile, **kwargs)
    return model


def warn_if_large(model, limit=None):
    """Warns once (``LargeModelWarning``) if ``model`` has more than ``limit`` weights.

    The message names the model, its weight count and its largest layer, with
    a hint: a ``Dense`` after a flattened feature map is the usual culprit.
    ``compose`` calls it on every model it builds.

    Args:
        model: A built Keras model.
        limit: Weight count above which to warn; defaults to ``LARGE_MODEL_PARAMS``.

    Returns:
        Whether it warned.
    """
    limit = LARGE_MODEL_PARAMS if limit is None else limit
    total = model.count_params()
    if total <= limit:
        return False
    largest = max(model.layers, key=lambda layer: layer.count_params() if layer.built else 0)
    size = largest.count_params()
    if isinstance(largest, keras.layers.Dense):
        hint = (
            "pass smaller `hidden` / `units`, or reduce feature maps with global pooling (the branches' "
            'reduction="avg" instead of "flatten") before the Dense layers'
        )
    else:
        hint = (
            "pass smaller sizes to the branches (e.g. `units`, `filters`, `hidden_dim`, `num_layers`) "
            "or a smaller preset"
        )
    warnings.warn(
        f"mmzoo.compose: model {model.name!r} has {total:,} weights (over {limit:,}); its largest layer "
        f"{largest.name!r} ({type(largest).__name__}) holds {size:,} ({size / total:.0%}). If that is not what you "
        f"want, {hint}.",
        LargeModelWarning,
        stacklevel=3,
    )
    return True
