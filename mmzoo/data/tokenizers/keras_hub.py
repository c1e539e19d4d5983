"""A KerasHub text preprocessor as a mmzoo tokenizer (``load_tokenizer`` kind ``"keras_hub"``).

``KerasHubTokenizer`` wraps a KerasHub ``TextClassifierPreprocessor``
(tokenizer + packer, e.g. BERT's WordPiece with ``[CLS]``/``[SEP]``) in the
mmzoo tokenizer interface: strings -> int32 ids of a fixed length, usable in
``tf.data``, in ``mmzoo.data.TextColumn`` and in an export's
``serving_raw`` function (its ops are tensorflow-text ops, so a client
imports ``tensorflow_text`` before ``tf.saved_model.load``).
``save(folder)`` writes ``tokenizer.json`` plus the preprocessor's
``save_to_preset`` output in ``folder/preset``; ``load_tokenizer(folder)``
rebuilds it offline. ``keras_hub`` itself is imported only when a
``KerasHubTokenizer`` is built.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from mmzoo import _gfile
from mmzoo import _validation as check
from mmzoo.data.tokenizers import base

PRESET_DIR = "preset"
PREPROCESSOR_FILE = "preprocessor.json"  # written by KerasHub's save_to_preset


@base.register_kind
class KerasHubTokenizer(base.Tokenizer):
    """A KerasHub text preprocessor as a mmzoo tokenizer: strings -> int32 token ids.

    Args:
        preprocessor: A KerasHub ``TextClassifierPreprocessor`` (tokenizer
            and packer, padding id 0), e.g. the one of a preset.
        sequence_length: Ids per example; sets the preprocessor's
            ``sequence_length`` (``None`` keeps it).
        name: The ``tf.Module`` name.

    Raises:
        ValueError: If ``preprocessor`` is not a KerasHub text preprocessor
            or ``sequence_length`` is invalid.

    Example::

        preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset("presets/bert_tiny_en_uncased")
        tok = KerasHubTokenizer(preprocessor, sequence_length=32)
        tok(tf.constant(["grinning face"])).shape  # TensorShape([1, 32])
    """

    kind = "keras_hub"

    def __init__(self, preprocessor, sequence_length=None, name=None):
        super().__init__(name=name or "keras_hub_tokenizer")
        import keras_hub  # heavy: only for KerasHub users  # noqa: PLC0415

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
        oov = getattr(preprocessor.tokenizer, "oov_token", None)
        self.unknown_id = int(preprocessor.tokenizer.token_to_id(oov)) if oov is not None else None

    @classmethod
    def fit(cls, texts, sequence_length, *, vocabulary_size=None, preprocessor):
        """Wraps a pretrained ``preprocessor`` and reports what it loses on the training texts.

        A pretrained vocabulary is not learned again: ``fit`` checks
        ``vocabulary_size`` (if given) against it and logs, once, how many
        training texts are longer than ``sequence_length`` ids (special
        tokens included) and how many training tokens are unknown to it.

        Args:
            texts: Iterable of ``str`` (the training split).
            sequence_length: Ids per example.
            vocabulary_size: ``None``, or the preprocessor's vocabulary size
                (keyword-only; any other value raises).
            preprocessor: A KerasHub ``TextClassifierPreprocessor`` (keyword-only).

        Returns:
            A ``KerasHubTokenizer``.

        Raises:
            ValueError: If an argument is invalid, or ``vocabulary_size``
                differs from the pretrained vocabulary's size.

        Example::

            tok = KerasHubTokenizer.fit(train_texts, 32, preprocessor=text_branch.preprocessor.preprocessor)
        """
        texts = base.text_list(texts)
        tokenizer = cls(preprocessor, check.positive_int("sequence_length", sequence_length))
        if vocabulary_size is not None and vocabulary_size != tokenizer.vocabulary_size:
            raise ValueError(
                f"A pretrained KerasHub vocabulary has {tokenizer.vocabulary_size} tokens and cannot be resized. "
                f"Received: vocabulary_size={vocabulary_size!r}"
            )
        tokenizer.report_fit(texts, unknown_reason="words the pretrained vocabulary cannot spell")
        return tokenizer

    def _padded_ids(self, texts):
        outputs = self.preprocessor(texts)
        ids = outputs["token_ids"] if isinstance(outputs, dict) else outputs
        return tf.ensure_shape(tf.cast(ids, tf.int32), (None, self.sequence_length))

    def ragged_ids(self, texts):
        """The ids the packer would emit without truncation or padding (special tokens included).

        Special tokens are counted, not placed: they are the ids ``[CLS]``
        and ``[SEP]`` (or the model's own) that the packer adds to an empty
        text, appended at the end of each row.
        """
        texts = base.check_texts(texts)
        ids = self.preprocessor.tokenizer(texts)
        if isinstance(ids, list):  # KerasHub returns Python lists for ragged results outside tf.function
            ids = tf.ragged.constant(ids, dtype=tf.int64, ragged_rank=1)
        elif not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(tf.convert_to_tensor(ids), padding=0)
        ids = tf.cast(ids, tf.int64)
        special = self._padded_ids(tf.constant([""]))[0]
        special = tf.cast(tf.boolean_mask(special, tf.not_equal(special, 0)), tf.int64)
        extra = tf.RaggedTensor.from_row_lengths(
            tf.tile(special, [ids.nrows()]), tf.fill([ids.nrows()], tf.size(special, out_type=tf.int64))
        )
        return tf.concat([ids, extra], axis=1)

    def get_config(self):
        """Returns the JSON-able settings (the vocabulary lives in the preset files)."""
        return {"kind": self.kind, "sequence_length": self.sequence_length,
                "preprocessor": type(self.preprocessor).__name__, "preset_dir": PRESET_DIR}

    @property
    def vocabulary(self):
        """All tokens in id order (the KerasHub tokenizer's ``get_vocabulary()``)."""
        return list(self.preprocessor.tokenizer.get_vocabulary())

    def save(self, folder):
        """Writes ``tokenizer.json`` and the preprocessor's preset (``folder/preset``).

        Args:
            folder: Output folder (created if needed).

        Example::

            tok.save("saved_models/emoji/tokenizer")
            mmzoo.data.load_tokenizer("saved_models/emoji/tokenizer")
        """
        save_preprocessor(folder, self.preprocessor, self.get_config())

    @classmethod
    def from_folder(cls, folder, config):
        """Rebuilds the tokenizer from ``save(folder)`` output (no network)."""
        return cls(load_preprocessor(folder, config), config["sequence_length"])


def save_preprocessor(folder, preprocessor, config):
    """Writes ``tokenizer.json`` (``config``) and ``preprocessor``'s KerasHub preset into ``folder/preset``."""
    folder = os.fspath(folder)
    tf.io.gfile.makedirs(os.path.join(folder, PRESET_DIR))
    preprocessor.save_to_preset(os.path.join(folder, PRESET_DIR))
    base.write_config(folder, config)


def load_preprocessor(folder, config):
    """The KerasHub preprocessor that ``save_preprocessor`` wrote into ``folder`` (no network)."""
    import keras  # noqa: PLC0415
    import keras_hub  # noqa: F401, PLC0415  (registers the KerasHub classes)

    preset = os.path.join(folder, config.get("preset_dir", PRESET_DIR))
    path = os.path.join(preset, PREPROCESSOR_FILE)
    if not _gfile.isfile(path):
        raise FileNotFoundError(f"No KerasHub preprocessor config in {folder}: expected {path}")
    # What ``from_preset`` does for a preprocessor, without needing the backbone's config.json.
    with _gfile.open_text(path) as f:
        preprocessor = keras.saving.deserialize_keras_object(json.load(f))
    preprocessor.load_preset_assets(preset)
    return preprocessor
