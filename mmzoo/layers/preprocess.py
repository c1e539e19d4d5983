"""In-model input adapters for pretrained encoders (serializable, no ``Lambda``).

* ``TokenIdsToEncoderInputs``: int32 token ids -> the dict a BERT-style
  encoder takes (ids, padding mask, segment ids), padding = id 0.
* ``ApplicationPreprocess``: [0, 1] images -> a ``keras.applications``
  model's own ``preprocess_input``.
"""

from __future__ import annotations

import importlib

import keras
from keras import ops

from mmzoo import _validation as check

# keras.applications model name -> its module (whose preprocess_input it expects).
APPLICATION_MODULES = {
    **{f"ResNet{d}": "resnet" for d in (50, 101, 152)},
    **{f"ResNet{d}V2": "resnet_v2" for d in (50, 101, 152)},
    "VGG16": "vgg16",
    "VGG19": "vgg19",
    "MobileNet": "mobilenet",
    "MobileNetV2": "mobilenet_v2",
    "MobileNetV3Small": "mobilenet_v3",
    "MobileNetV3Large": "mobilenet_v3",
    **{f"EfficientNetB{i}": "efficientnet" for i in range(8)},
    **{f"EfficientNetV2B{i}": "efficientnet_v2" for i in range(4)},
    **{f"EfficientNetV2{s}": "efficientnet_v2" for s in "SML"},
    **{f"DenseNet{d}": "densenet" for d in (121, 169, 201)},
    **{f"ConvNeXt{s}": "convnext" for s in ("Tiny", "Small", "Base", "Large", "XLarge")},
    "InceptionV3": "inception_v3",
    "InceptionResNetV2": "inception_resnet_v2",
    "Xception": "xception",
    "NASNetMobile": "nasnet",
    "NASNetLarge": "nasnet",
}


def preprocess_function(application):
    """The ``preprocess_input`` of ``keras.applications`` model ``application``.

    Args:
        application: A model name from ``APPLICATION_MODULES``, e.g. ``"ResNet50"``.

    Returns:
        The function ``keras.applications.<module>.preprocess_input``.

    Raises:
        ValueError: If ``application`` is not a known model name.
    """
    module = APPLICATION_MODULES[check.choice("application", application, set(APPLICATION_MODULES))]
    return importlib.import_module(f"keras.applications.{module}").preprocess_input


@keras.saving.register_keras_serializable(package="mmzoo")
class ApplicationPreprocess(keras.layers.Layer):
    """Scales [0, 1] images by ``input_scale`` then applies the application's ``preprocess_input``.

    Args:
        application: A ``keras.applications`` model name, e.g. ``"ResNet50"``.
        input_scale: Factor from the model-input range to the application's
            expected [0, 255] range (``255.0`` for [0, 1] images).
        **kwargs: Standard layer arguments.

    Raises:
        ValueError: If ``application`` is unknown or ``input_scale`` is not positive.

    Example:

    >>> import numpy as np
    >>> from mmzoo.layers import ApplicationPreprocess
    >>> layer = ApplicationPreprocess("MobileNetV2")  # "tf" mode: [0, 255] -> [-1, 1]
    >>> layer(np.array([[[[0.0, 0.5, 1.0]]]], "float32")).numpy().tolist()
    [[[[-1.0, 0.0, 1.0]]]]
    """

    def __init__(self, application, input_scale=255.0, **kwargs):
        super().__init__(**kwargs)
        self._preprocess = preprocess_function(application)
        if isinstance(input_scale, bool) or not isinstance(input_scale, (int, float)) or input_scale <= 0:
            raise ValueError(f"`input_scale` must be a positive number. Received: input_scale={input_scale!r}")
        self.application = application
        self.input_scale = float(input_scale)

    def call(self, inputs):
        return self._preprocess(ops.cast(inputs, self.compute_dtype) * self.input_scale)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(application=self.application, input_scale=self.input_scale)
        return config


@keras.saving.register_keras_serializable(package="mmzoo")
class TokenIdsToEncoderInputs(keras.layers.Layer):
    """Token ids ``(batch, length)`` -> ``{ids_key: ids, mask_key: ids != 0, segment_key: 0s}``.

    Args:
        ids_key: Key of the token ids (``"input_word_ids"`` for TF Hub BERT,
            ``"token_ids"`` for KerasHub).
        mask_key: Key of the padding mask (``"input_mask"`` / ``"padding_mask"``).
        segment_key: Key of the all-zero segment ids (``"input_type_ids"`` /
            ``"segment_ids"``), or ``None`` to leave it out.
        **kwargs: Standard layer arguments.

    Raises:
        ValueError: If a key is not a non-empty string (``segment_key`` may be None).

    The outputs are int32 whatever the layer's dtype policy.

    Example:

    >>> import numpy as np
    >>> from mmzoo.layers import TokenIdsToEncoderInputs
    >>> out = TokenIdsToEncoderInputs()(np.array([[7, 5, 0]], "int32"))
    >>> {key: value.numpy().tolist() for key, value in sorted(out.items())}
    {'input_mask': [[1, 1, 0]], 'input_type_ids': [[0, 0, 0]], 'input_word_ids': [[7, 5, 0]]}
    """

    def __init__(self, ids_key="input_word_ids", mask_key="input_mask", segment_key="input_type_ids", **kwargs):
        super().__init__(**kwargs)
        for arg, value in (("ids_key", ids_key), ("mask_key", mask_key)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"`{arg}` must be a non-empty string. Received: {arg}={value!r}")
        if segment_key is not None and (not isinstance(segment_key, str) or not segment_key):
            raise ValueError(f"`segment_key` must be a non-empty string or None. Received: segment_key={segment_key!r}")
        self.ids_key = ids_key
        self.mask_key = mask_key
        self.segment_key = segment_key

    def call(self, token_ids):
        token_ids = ops.cast(token_ids, "int32")
        outputs = {self.ids_key: token_ids, self.mask_key: ops.cast(ops.not_equal(token_ids, 0), "int32")}
        if self.segment_key is not None:
            outputs[self.segment_key] = ops.zeros_like(token_ids)
        return outputs

    def compute_output_spec(self, token_ids):
        keys = [self.ids_key, self.mask_key] + ([self.segment_key] if self.segment_key else [])
        return {key: keras.KerasTensor(token_ids.shape, dtype="int32") for key in keys}

    def get_config(self):
        config = super().get_config()
        config.update(ids_key=self.ids_key, mask_key=self.mask_key, segment_key=self.segment_key)
        return config
