"""``compose``: branches + fusion + head -> a ``keras.Model`` with dict inputs."""

from __future__ import annotations

import warnings

import keras

from mmzoo import _validation as check
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

    Returns:
        A functional ``keras.Model`` whose inputs are a dict keyed by branch
        name and whose output is the head's activation (float32): a
        ``mmzoo.heads.HeadActivation`` layer named ``"output"`` that carries
        the head (kind, class names, threshold) into saved models and exports
        (``mmzoo.heads.from_model(model)``). A model with more than 20M
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

    features = [b.features for b in branches]
    if isinstance(fusion_layer, fusion_lib.LateFusion):
        logits = [head.logits(dense_stack(b.features, b.name), name=b.name) for b in branches]
        combined = fusion_layer(logits) if len(logits) > 1 else logits[0]
        outputs = head.activate(combined)
    else:
        fused = fusion_layer(features) if len(features) > 1 else features[0]
        outputs = head(dense_stack(fused, "head"))

    model = keras.Model(inputs={b.name: b.input for b in branches}, outputs=outputs, name=name)
    warn_if_large(model)
    if compile:
        compile_model(model, head, optimizer=optimizer, learning_rate=learning_rate, jit_compile=jit_compile)
    return model


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
