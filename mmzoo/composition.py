"""``compose``: branches + fusion + head -> a ``keras.Model`` with dict inputs."""

from __future__ import annotations

import keras

from mmzoo import _validation as check
from mmzoo import fusion as fusion_lib
from mmzoo import heads as heads_lib
from mmzoo.branches.base import Branch


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
        name and whose output is the head's activation (float32).

    Raises:
        ValueError: If ``branches`` is empty, holds something that is not a
            ``Branch``, or repeats a name; or another argument is invalid.

    Example:

    >>> image = branches.image_cnn((28, 28, 1), name="image")
    >>> audio = branches.audio_spectrogram_cnn(num_samples=4000, sampling_rate=8000, name="audio")
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
