"""A KerasHub text preprocessor as a mmzoo tokenizer (``load_tokenizer`` kind ``"keras_hub"``).

``KerasHubTokenizer`` wraps a KerasHub ``TextClassifierPreprocessor``
(tokenizer + packer, e.g. BERT's WordPiece with ``[CLS]``/``[SEP]``) in the
contract of ``mmzoo.data.tokenizers``: strings -> int32 ids of a fixed
length, usable in ``tf.data``, in ``mmzoo.data.TextColumn`` and in an
export's ``serving_raw`` function (its ops are tensorflow-text ops, so a
client imports ``tensorflow_text`` before ``tf.saved_model.load``).
``save(folder)`` writes ``tokenizer.json`` plus the preprocessor's
``save_to_preset`` output in ``folder/preset``; ``load_tokenizer(folder)``
rebuilds it offline. ``keras_hub`` is imported lazily.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from mmzoo import _validation as check
from mmzoo.data.tokenizers import base as tokenizers

PRESET_DIR = "preset"
PREPROCESSOR_FILE = "preprocessor.json"  # written by KerasHub's save_to_preset


class KerasHubTokenizer(tf.Module):
    """A KerasHub text preprocessor as a mmzoo tokenizer: strings -> int32 token ids.

    Args:
        preprocessor: A KerasHub ``TextClassifierPreprocessor`` (tokenizer
            and packer, padding id 0), e.g. the one of a preset.
        sequence_length: Ids per example; sets the preprocessor's
            ``sequence_length`` (``None`` keeps it).

    Raises:
        ValueError: If ``preprocessor`` is not a KerasHub text preprocessor
            or ``sequence_length`` is invalid.

    Example:

    >>> preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset("presets/bert_tiny_en_uncased")
    >>> tok = KerasHubTokenizer(preprocessor, sequence_length=32)
    >>> tok(tf.constant(["grinning face"])).shape
    TensorShape([1, 32])
    """

    kind = "keras_hub"

    def __init__(self, preprocessor, sequence_length=None, name=None):
        super().__init__(name=name or "keras_hub_tokenizer")
        import keras_hub  # noqa: PLC0415 (heavy; only for KerasHub users)

        if not isinstance(preprocessor, keras_hub.models.TextClassifierPreprocessor):
            raise ValueError(
                "`preprocessor` must be a keras_hub.models.TextClassifierPreprocessor. "
                f"Received: preprocessor={preprocessor!r}"
            )
        if sequence_length is not None:
            preprocessor.sequence_length = check.positive_int("sequence_length", sequence_length)
        self.preprocessor = preprocessor
        self.sequence_length = int(preprocessor.sequence_length)
        self.vocabulary_size = int(preprocessor.tokenizer.vocabulary_size())

    def __call__(self, texts):
        """Maps strings to ids; works eagerly, in ``Dataset.map`` and in ``tf.function``.

        Args:
            texts: A scalar or 1-D ``tf.string`` tensor.

        Returns:
            int32 ids of shape ``(sequence_length,)`` or ``(batch, sequence_length)``.
        """
        return tokenizers._batched(self._ids, texts)

    def _ids(self, texts):
        outputs = self.preprocessor(texts)
        ids = outputs["token_ids"] if isinstance(outputs, dict) else outputs
        return tf.ensure_shape(tf.cast(ids, tf.int32), (None, self.sequence_length))

    def get_config(self):
        """Returns the JSON-able settings (the vocabulary lives in the preset files)."""
        return {"kind": self.kind, "sequence_length": self.sequence_length,
                "preprocessor": type(self.preprocessor).__name__, "preset_dir": PRESET_DIR}

    def save(self, folder):
        """Writes ``tokenizer.json`` and the preprocessor's preset (``folder/preset``).

        Args:
            folder: Output folder (created if needed).

        Example:

        >>> tok.save("saved_models/emoji/tokenizer")
        >>> mmzoo.data.load_tokenizer("saved_models/emoji/tokenizer")
        """
        folder = os.fspath(folder)
        os.makedirs(os.path.join(folder, PRESET_DIR), exist_ok=True)
        self.preprocessor.save_to_preset(os.path.join(folder, PRESET_DIR))
        with open(os.path.join(folder, tokenizers.CONFIG_FILE), "w", encoding="utf-8") as f:
            json.dump({"format_version": tokenizers.FORMAT_VERSION, **self.get_config()}, f, indent=2, sort_keys=True)

    @classmethod
    def from_folder(cls, folder, config):
        """Rebuilds the tokenizer from ``save(folder)`` output (no network)."""
        import keras  # noqa: PLC0415
        import keras_hub  # noqa: PLC0415, F401 (registers the KerasHub classes for deserialization)

        preset = os.path.join(folder, config.get("preset_dir", PRESET_DIR))
        path = os.path.join(preset, PREPROCESSOR_FILE)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No KerasHub preprocessor config in {folder}: expected {path}")
        # What ``from_preset`` does for a preprocessor, without needing the backbone's config.json.
        with open(path, encoding="utf-8") as f:
            preprocessor = keras.saving.deserialize_keras_object(json.load(f))
        preprocessor.load_preset_assets(preset)
        return cls(preprocessor, config["sequence_length"])
