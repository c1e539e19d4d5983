"""Text tokenizers: strings -> int32 ids of a fixed length, inside ``tf.data``.

One interface for every kind (see ``base``): ``Kind.fit(texts,
sequence_length, *, vocabulary_size=None, **kind_options)``, ``tok(texts)``
in ``tf.data`` or a ``tf.function``, ``tok.save(folder)`` /
``load_tokenizer(folder)``, attributes ``sequence_length`` and
``vocabulary_size``. Kinds: ``VocabTokenizer`` (words), ``WordPieceTokenizer``
(BERT WordPiece), ``KerasHubTokenizer`` (a KerasHub BERT-family
preprocessor), ``KerasHubPromptTokenizer`` (a KerasHub CLIP/SigLIP one).

Importing this package imports every kind's module (each registers itself in
``base``); ``keras_hub`` itself is imported only when a ``KerasHubTokenizer``
is built.
"""

from mmzoo.data.tokenizers.base import (
    CONFIG_FILE,
    FORMAT_VERSION,
    VOCAB_FILE,
    Tokenizer,
    check_tokenizer,
    load_tokenizer,
    register_kind,
)
from mmzoo.data.tokenizers.keras_hub import KerasHubTokenizer
from mmzoo.data.tokenizers.keras_hub_prompts import KerasHubPromptTokenizer
from mmzoo.data.tokenizers.vocab import VocabTokenizer
from mmzoo.data.tokenizers.wordpiece import WordPieceTokenizer

__all__ = [
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "VOCAB_FILE",
    "KerasHubPromptTokenizer",
    "KerasHubTokenizer",
    "Tokenizer",
    "VocabTokenizer",
    "WordPieceTokenizer",
    "check_tokenizer",
    "load_tokenizer",
    "register_kind",
]
