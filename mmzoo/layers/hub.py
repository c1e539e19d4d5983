"""``HubLayer``: a TF2 SavedModel (TensorFlow Hub handle or folder) as a Keras 3 layer.

``tensorflow_hub.KerasLayer`` is a Keras 2 (``tf_keras``) layer and fails
inside a Keras 3 functional model. ``HubLayer`` does the same job natively: it
loads the SavedModel with ``hub.load``, adopts every variable its call
function uses as a Keras weight (trainable ones stay trainable, so
``trainable=True`` fine-tunes them and ``model.trainable_weights`` lists
them), and passes ``training`` when the SavedModel's ``__call__`` accepts it
(only while the layer is trainable: a frozen layer runs in inference mode, as
Keras transfer learning does with BatchNormalization).

What a SavedModel must offer: a TF2 ``__call__`` (the "Reusable SavedModel"
API of TF Hub) or a signature (``signature=``). Models published only in the
TF1 Hub format or as Keras 2 ``.h5``/Keras-2-saved Keras objects have no
callable TF2 function and are refused with a ``ValueError`` naming the handle
(their variables cannot be adopted by Keras 3). Models whose signature only
exists as TF1 ``signatures`` can be used with ``signature=`` but then have no
``training`` switch.

Loading from a config re-reads the SavedModel named by ``handle``, which
runs graph code from that folder, so (as ``keras.layers.TFSMLayer``) it is
refused in Keras safe mode: load such models with
``keras.saving.load_model(path, safe_mode=False)`` only from sources you
trust. Exports (``mmzoo.export``) do not need this: the SavedModel's
functions and variables are written into the export.

Mixed precision: a SavedModel computes in the dtypes it was traced with, so
``HubLayer`` feeds it floating inputs in the SavedModel's own dtype (its
``input_dtype``; no float16 round trip under ``"mixed_float16"``) and casts
floating outputs to the layer's compute dtype. The adopted variables keep
their own dtype (float32 for published models).
"""

from __future__ import annotations

import inspect

import keras
import tensorflow as tf

from mmzoo._keras_compat import in_safe_mode
from mmzoo._offline import load_hub_module


def _concrete_functions(fn):
    if hasattr(fn, "concrete_functions"):
        return list(fn.concrete_functions)
    return [fn]


def _variables_used_by(fn):
    """(trainable, non-trainable) tf.Variables read by ``fn``'s traces, deduplicated."""
    trainable, others, seen = [], [], set()
    for concrete in _concrete_functions(fn):
        for v in concrete.trainable_variables:
            if id(v) not in seen:
                seen.add(id(v))
                trainable.append(v)
    for concrete in _concrete_functions(fn):
        for v in concrete.variables:
            if id(v) not in seen:
                seen.add(id(v))
                others.append(v)
    return trainable, others


def call_input_spec(fn):
    """The first argument's spec (a ``tf.TensorSpec`` or a dict of them) of ``fn``."""
    concrete = _concrete_functions(fn)[0]
    args, kwargs = concrete.structured_input_signature
    if args:
        return args[0]
    return kwargs if len(kwargs) != 1 else next(iter(kwargs.values()))


def resolve_call(module, signature, handle):
    """The function of ``module`` to call: a named signature or ``__call__``."""
    if signature is not None:
        if signature not in module.signatures:
            raise ValueError(
                f"The SavedModel at handle={handle!r} has no signature {signature!r}. "
                f"Available: {sorted(module.signatures)}. Received: signature={signature!r}"
            )
        return module.signatures[signature]
    if callable(module) and hasattr(module.__call__, "concrete_functions"):
        return module.__call__
    raise ValueError(
        f"The SavedModel at handle={handle!r} has no TF2 `__call__` function, so it cannot be used in a "
        "Keras 3 model (TF1 Hub format or a Keras-2-only export). Pass `signature=` with one of "
        f"{sorted(module.signatures)} if it has serving signatures."
    )


@keras.saving.register_keras_serializable(package="mmzoo")
class HubLayer(keras.layers.Layer):
    """Calls a TF2 SavedModel from a TF Hub handle or a local folder.

    Args:
        handle: A TF Hub URL handle, or a local SavedModel folder.
        output_key: Which output to return when the model returns a dict (a
            key) or a tuple/list (an index); ``None`` if it returns one tensor.
        signature: Call this serving signature instead of ``__call__``
            (inputs are then passed as keyword arguments when a dict).
        batched: ``False`` for SavedModels that take one unbatched example
            (e.g. YAMNet's 1-D waveform): the layer maps them over the batch.
        trainable: Fine-tune the SavedModel's trainable variables.
        **kwargs: Standard layer arguments (``name``, ``dtype``).

    Raises:
        ValueError: If ``handle`` is not a string, or the SavedModel has no
            usable function, or ``signature`` does not exist.
        ConnectionError: If ``handle`` is a URL that cannot be downloaded
            (the message says how to pass a local copy).

    Example::

        encoder = HubLayer("/models/my_image_encoder", output_key="pooled_output", trainable=True)
        features = encoder(keras.Input((96, 96, 3)))
    """

    def __init__(self, handle, output_key=None, signature=None, batched=True, trainable=False, **kwargs):
        super().__init__(trainable=trainable, **kwargs)
        if not isinstance(handle, str) or not handle:
            raise ValueError(f"`handle` must be a TF Hub URL or a SavedModel folder. Received: handle={handle!r}")
        if output_key is not None and not isinstance(output_key, (str, int)):
            raise ValueError(f"`output_key` must be a string, an int or None. Received: output_key={output_key!r}")
        self.handle = handle
        self.output_key = output_key
        self.signature = signature
        self.batched = bool(batched)
        self._module = load_hub_module(handle)
        self._fn = resolve_call(self._module, signature, handle)
        try:
            parameters = inspect.signature(self._fn).parameters
        except (TypeError, ValueError):
            parameters = {}
        self.accepts_training = signature is None and "training" in parameters
        trainable_vars, other_vars = _variables_used_by(self._fn)
        for v in trainable_vars + other_vars:
            self._adopt(v)
        self.built = True

    def module_input_spec(self):
        """The spec of the SavedModel function's first input (a ``tf.TensorSpec`` or a dict)."""
        return call_input_spec(self._fn)

    @property
    def input_dtype(self):
        """The dtype floating inputs are converted to: the SavedModel's own floating input dtype.

        Falls back to the compute dtype when the SavedModel takes no floating input.
        """
        for spec in tf.nest.flatten(self.module_input_spec()):
            dtype = getattr(spec, "dtype", None)
            if dtype is not None and dtype.is_floating:
                return dtype.name
        return self.compute_dtype

    def _to_module_dtypes(self, inputs):
        """Casts floating inputs to the dtypes of the SavedModel's input spec (where the structures match)."""

        def cast(x, spec):
            dtype = getattr(spec, "dtype", None)
            x = tf.convert_to_tensor(x)
            if dtype is not None and dtype.is_floating and x.dtype.is_floating and x.dtype != dtype:
                return tf.cast(x, dtype)
            return x

        try:
            return tf.nest.map_structure(cast, inputs, self.module_input_spec())
        except (TypeError, ValueError):  # structures differ: let the SavedModel report it
            return inputs

    def _to_compute_dtype(self, outputs):
        return tf.nest.map_structure(
            lambda y: tf.cast(y, self.compute_dtype) if y.dtype.is_floating and y.dtype != self.compute_dtype else y,
            outputs,
        )

    def _adopt(self, variable):
        """Tracks an existing tf.Variable as a Keras weight (no copy)."""
        name = variable.name.split(":")[0].replace("/", "_")
        weight = keras.Variable(
            initializer=variable, trainable=variable.trainable, dtype=variable.dtype.name, shape=variable.shape,
            name=name,
        )
        self._track_variable(weight)

    def _call_module(self, inputs, training):
        if self.signature is not None:
            return self._fn(**inputs) if isinstance(inputs, dict) else self._fn(inputs)
        if self.accepts_training:
            return self._fn(inputs, training=training)
        return self._fn(inputs)

    def _select(self, outputs):
        if self.output_key is None:
            if isinstance(outputs, dict):
                if len(outputs) == 1:
                    return next(iter(outputs.values()))
                raise ValueError(
                    f"The SavedModel at handle={self.handle!r} returns several outputs {sorted(outputs)}: "
                    "pass `output_key=` to choose one."
                )
            if isinstance(outputs, (list, tuple)):
                raise ValueError(
                    f"The SavedModel at handle={self.handle!r} returns {len(outputs)} outputs: "
                    "pass `output_key=` (an index) to choose one."
                )
            return outputs
        try:
            return outputs[self.output_key]
        except (KeyError, IndexError, TypeError):
            available = sorted(outputs) if isinstance(outputs, dict) else f"indices < {len(outputs)}"
            raise ValueError(
                f"The SavedModel at handle={self.handle!r} has no output {self.output_key!r}. "
                f"Available: {available}. Received: output_key={self.output_key!r}"
            ) from None

    def call(self, inputs, training=None):
        training = bool(training) and self.trainable
        inputs = self._to_module_dtypes(inputs)
        if self.batched:
            return self._to_compute_dtype(self._select(self._call_module(inputs, training)))
        example_output = self._select(_concrete_functions(self._fn)[0].structured_outputs)
        spec = tf.TensorSpec(example_output.shape, example_output.dtype)
        outputs = tf.map_fn(
            lambda example: self._select(self._call_module(example, training)), inputs, fn_output_signature=spec
        )
        return self._to_compute_dtype(outputs)

    def get_config(self):
        config = super().get_config()
        config.update(
            handle=self.handle, output_key=self.output_key, signature=self.signature, batched=self.batched
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None, safe_mode=None):
        """Rebuilds the layer by loading ``config["handle"]`` again (not in safe mode).

        Raises:
            ValueError: In Keras safe mode (the default of ``load_model``),
                because loading a SavedModel runs its graph code.
        """
        # The same rule and check as keras.layers.TFSMLayer.from_config.
        effective = safe_mode if safe_mode is not None else in_safe_mode()
        if effective is not False:
            raise ValueError(
                f"Refusing to load HubLayer handle={config.get('handle')!r} in safe mode: loading a SavedModel "
                "runs its graph code. If you trust it, pass `safe_mode=False` to `keras.saving.load_model` "
                "(or call `keras.config.enable_unsafe_deserialization()`)."
            )
        return cls(**config)
