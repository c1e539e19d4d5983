"""Text tokenizers: strings -> int32 ids of a fixed length, inside ``tf.data``."""

from mmzoo.data.tokenizers.base import (
    CONFIG_FILE,
    FORMAT_VERSION,
    VOCAB_FILE,
    VocabTokenizer,
    WordPieceTokenizer,
    load_tokenizer,
)
from mmzoo.data.tokenizers.keras_hub import KerasHubTokenizer

__all__ = [
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "KerasHubTokenizer",
    "VOCAB_FILE",
    "VocabTokenizer",
    "WordPieceTokenizer",
    "load_tokenizer",
]
