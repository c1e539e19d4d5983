"""``KerasHubPromptTokenizer``: a KerasHub CLIP or SigLIP preprocessor's text part as a mmzoo tokenizer.

Used by ``mmzoo.retrieval.keras_hub_dual_encoder``; ``keras_hub`` is imported
only when one is built or loaded.
"""

from __future__ import annotations

import tensorflow as tf

from mmzoo import _validation as check
from mmzoo.data.tokenizers import base
from mmzoo.data.tokenizers.keras_hub import PRESET_DIR, load_preprocessor, save_preprocessor


def preprocessor_kind(preprocessor):
    """``"CLIP"`` / ``"SigLIP"`` for those KerasHub preprocessors, else ``None``."""
    import keras_hub  # noqa: PLC0415

    for kind, cls in (("CLIP", keras_hub.models.CLIPPreprocessor), ("SigLIP", keras_hub.models.SigLIPPreprocessor)):
        if isinstance(preprocessor, cls):
            return kind
    return None


# Eager calls run the tokenizer in a tf.function (``base.graph_function``), so eager ids are the tf.data /
# serving (TensorFlow-path) ids.


@base.register_kind
class KerasHubPromptTokenizer(base.Tokenizer):
    """A KerasHub CLIP or SigLIP preprocessor's text part as a mmzoo tokenizer: strings -> int32 ids.

    The ids are the preset's: lower-cased (CLIP) or canonicalised (SigLIP),
    tokenised, start/end tokens added and padded as the preset pads (CLIP:
    id 0; SigLIP: its end token), ``sequence_length`` per text. Eager calls
    run the same TensorFlow ops as ``tf.data`` and an export's raw serving,
    so all give identical ids. The preprocessor's image converter is not
    used (a copy of the preprocessor without it is kept): images go through
    the image tower.

    Args:
        preprocessor: A ``keras_hub.models.CLIPPreprocessor`` or
            ``SigLIPPreprocessor``, e.g. the one of a preset.
        sequence_length: Ids per text; ``None`` keeps the preprocessor's.
        name: The ``tf.Module`` name.

    Raises:
        ValueError: If ``preprocessor`` is not a CLIP/SigLIP preprocessor or
            ``sequence_length`` is invalid.

    Example::

        preprocessor = keras_hub.models.CLIPPreprocessor.from_preset("clip_vit_base_patch16")
        tok = KerasHubPromptTokenizer(preprocessor, sequence_length=32)
        tok(tf.constant(["a smiling face"])).shape  # TensorShape([1, 32])
    """

    kind = "keras_hub_prompts"

    def __init__(self, preprocessor, sequence_length=None, name=None):
        super().__init__(name=name or "keras_hub_prompt_tokenizer")
        kind = preprocessor_kind(preprocessor)
        if kind is None:
            raise ValueError(
                "`preprocessor` must be a keras_hub.models.CLIPPreprocessor or SigLIPPreprocessor. "
                f"Received: preprocessor={preprocessor!r}"
            )
        config = preprocessor.get_config()
        config.pop("image_converter", None)
        config["tokenizer"] = preprocessor.tokenizer
        if sequence_length is not None:
            config["sequence_length"] = check.positive_int("sequence_length", sequence_length)
        self.preprocessor = type(preprocessor).from_config(config)  # text only, the same tokenizer layer
        self.model_kind = kind
        self.sequence_length = int(self.preprocessor.sequence_length)
        tokenizer = self.preprocessor.tokenizer
        self.vocabulary_size = int(tokenizer.vocabulary_size())
        self.pad_id = int(tokenizer.pad_token_id)
        # CLIP has no unknown token (byte-level BPE spells anything); SigLIP's SentencePiece has <unk>.
        unknown = getattr(tokenizer, "unknown_token_id", None)
        self.unknown_id = None if unknown is None else int(unknown)

    @classmethod
    def fit(cls, texts, sequence_length, *, vocabulary_size=None, preprocessor):
        """Wraps a pretrained ``preprocessor`` and logs what it loses on the training texts.

        Args:
            texts: Iterable of ``str`` (the training split).
            sequence_length: Ids per text.
            vocabulary_size: ``None``, or the preprocessor's vocabulary size
                (keyword-only; any other value raises).
            preprocessor: A KerasHub CLIP/SigLIP preprocessor (keyword-only).

        Returns:
            A ``KerasHubPromptTokenizer``.

        Raises:
            ValueError: If an argument is invalid, or ``vocabulary_size``
                differs from the pretrained vocabulary's size.
        """
        texts = base.text_list(texts)
        tokenizer = cls(preprocessor, check.positive_int("sequence_length", sequence_length))
        if vocabulary_size is not None and vocabulary_size != tokenizer.vocabulary_size:
            raise ValueError(
                f"A pretrained KerasHub vocabulary has {tokenizer.vocabulary_size} tokens and cannot be resized. "
                f"Received: vocabulary_size={vocabulary_size!r}"
            )
        tokenizer.report_fit(texts, unknown_reason="pieces the pretrained vocabulary cannot spell")
        return tokenizer

    def _packed_ids(self, texts):
        ids = self.preprocessor({"prompts": texts, "images": None})["token_ids"]
        return tf.ensure_shape(tf.cast(ids, tf.int32), (None, self.sequence_length))

    def _padded_ids(self, texts):
        if tf.executing_eagerly():
            return base.graph_function(self, "_packed_ids", autograph=True)(texts)
        return self._packed_ids(texts)

    def _unpacked_ids(self, texts):
        pre = self.preprocessor
        if getattr(pre, "to_lower", False):  # CLIPPreprocessor
            texts = tf.strings.lower(texts)
        if getattr(pre, "canonicalize_text", False):  # SigLIPPreprocessor
            texts = pre.canonicalize_inputs(texts)
        ids = tf.cast(pre.tokenizer(texts), tf.int64)
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids)
        rows = ids.nrows()
        parts = [ids]
        if pre.add_start_token and pre.tokenizer.start_token_id is not None:
            parts.insert(0, tf.fill([rows, 1], tf.constant(pre.tokenizer.start_token_id, tf.int64)))
        if pre.add_end_token:
            parts.append(tf.fill([rows, 1], tf.constant(pre.tokenizer.end_token_id, tf.int64)))
        return tf.concat(parts, axis=1)

    def ragged_ids(self, texts):
        """The ids of each text with its start/end tokens, untruncated and unpadded (``tf.RaggedTensor``)."""
        texts = base.check_texts(texts)
        if tf.executing_eagerly():
            return base.graph_function(self, "_unpacked_ids", autograph=True)(texts)
        return self._unpacked_ids(texts)

    def get_config(self):
        """Returns the JSON-able settings (the vocabulary lives in the preset files)."""
        return {"kind": self.kind, "sequence_length": self.sequence_length,
                "preprocessor": type(self.preprocessor).__name__, "pad_id": self.pad_id, "preset_dir": PRESET_DIR}

    @property
    def vocabulary(self):
        """All tokens in id order."""
        return list(self.preprocessor.tokenizer.get_vocabulary())

    def save(self, folder):
        """Writes ``tokenizer.json`` and the text preprocessor's preset (``folder/preset``).

        Args:
            folder: Output folder (created if needed); ``mmzoo.data.load_tokenizer``
                reads it back.
        """
        save_preprocessor(folder, self.preprocessor, self.get_config())

    @classmethod
    def from_folder(cls, folder, config):
        """Rebuilds the tokenizer from ``save(folder)`` output (no network)."""
        return cls(load_preprocessor(folder, config), config["sequence_length"])
