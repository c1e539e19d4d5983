"""Text tokenizers that run inside ``tf.data`` (and inside a serving
``tf.function``) with tensorflow-text: strings -> int32 ids of a fixed length.

Two kinds, one contract:

* ``VocabTokenizer``: split on whitespace or Unicode script boundaries,
  lower-case, look words up in a vocabulary; unknown words map to the OOV id.
* ``WordPieceTokenizer``: BERT-style normalisation and WordPiece
  (``tensorflow_text.FastBertTokenizer``) over a vocabulary file.

Both pad with id 0 and truncate to ``sequence_length``, return int32, and
``save(folder)`` / ``load_tokenizer(folder)`` round-trip exactly (a
``tokenizer.json`` config plus ``vocab.txt``, one token per line, line ``i`` =
id ``i``). Both are ``tf.Module``s, so an exported serving function can track
their lookup tables. ``load_tokenizer`` also reads the third kind,
``mmzoo.data.KerasHubTokenizer`` (a KerasHub text preprocessor, the
``preprocessor`` of ``branches.text_keras_hub``).
"""

from __future__ import annotations

import collections
import json
import os

import tensorflow as tf
import tensorflow_text as tf_text

from mmzoo import _validation as check

PAD_TOKEN = "[PAD]"
OOV_TOKEN = "[UNK]"
SPLITS = ("whitespace", "unicode_script")
CONFIG_FILE = "tokenizer.json"
VOCAB_FILE = "vocab.txt"
FORMAT_VERSION = 1


def _check_texts(texts):
    texts = tf.convert_to_tensor(texts)
    if texts.dtype != tf.string:
        raise ValueError(f"Tokenizers take tf.string text. Received dtype: {texts.dtype.name}")
    return texts


def _to_ids(ragged_ids, sequence_length):
    """Ragged int ids (batch, None) -> int32 (batch, sequence_length), 0-padded."""
    ids = tf.cast(ragged_ids, tf.int32)
    return ids.to_tensor(default_value=0, shape=[None, sequence_length])


def _batched(fn, texts):
    """Applies ``fn`` (rank-1 strings -> (batch, L)) to a scalar or a vector."""
    texts = _check_texts(texts)
    if texts.shape.rank == 0:
        return fn(tf.reshape(texts, [1]))[0]
    if texts.shape.rank != 1:
        raise ValueError(f"Tokenizers take a scalar or a 1-D batch of strings. Received shape: {texts.shape}")
    return fn(texts)


def _read_vocab_file(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Vocabulary file not found: {path}")
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def _write_config(folder, config, vocabulary):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, CONFIG_FILE), "w", encoding="utf-8") as f:
        json.dump({"format_version": FORMAT_VERSION, **config}, f, indent=2, sort_keys=True)
    with open(os.path.join(folder, VOCAB_FILE), "w", encoding="utf-8") as f:
        f.writelines(token + "\n" for token in vocabulary)


class VocabTokenizer(tf.Module):
    """Word-level tokenizer: split, lower-case, vocabulary lookup, pad/truncate.

    Ids: 0 is padding, 1 is the out-of-vocabulary id, then the vocabulary in
    order (``vocabulary_size = len(vocabulary) + 2``).

    Args:
        vocabulary: The known words (unique, non-empty, without whitespace;
            not the pad or OOV token).
        sequence_length: Length of every id sequence.
        lower: Lower-case text (Unicode-aware) before lookup.
        split: ``"unicode_script"`` (default: also splits punctuation and
            changes of script off words) or ``"whitespace"``.

    Raises:
        ValueError: If an argument is invalid (naming the bad token).

    Example:

    >>> tok = VocabTokenizer(["grinning", "face"], sequence_length=4)
    >>> tok(tf.constant(["Grinning cat face"])).numpy()
    array([[2, 1, 3, 0]], dtype=int32)
    """

    kind = "vocab"

    def __init__(self, vocabulary, sequence_length, lower=True, split="unicode_script", name=None):
        super().__init__(name=name)
        self.sequence_length = check.positive_int("sequence_length", sequence_length)
        check.choice("split", split, set(SPLITS))
        self.lower = bool(lower)
        self.split = split
        vocabulary = list(vocabulary)
        seen = set()
        for i, token in enumerate(vocabulary):
            if not isinstance(token, str) or not token or token != "".join(token.split()):
                raise ValueError(
                    f"Vocabulary tokens must be non-empty strings without whitespace. "
                    f"Received: vocabulary[{i}]={token!r}"
                )
            if token in (PAD_TOKEN, OOV_TOKEN) or token in seen:
                raise ValueError(f"Vocabulary token {token!r} (vocabulary[{i}]) is reserved or repeated.")
            seen.add(token)
        self._vocabulary = tuple([PAD_TOKEN, OOV_TOKEN] + vocabulary)
        self.vocabulary_size = len(self._vocabulary)
        self._splitter = tf_text.UnicodeScriptTokenizer() if split == "unicode_script" else tf_text.WhitespaceTokenizer()
        keys = tf.constant(vocabulary if vocabulary else [""], tf.string)
        values = tf.range(2, 2 + len(keys), dtype=tf.int64)
        self._table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), default_value=1)
        self._inverse = tf.constant(self._vocabulary, tf.string)

    @property
    def vocabulary(self):
        """All tokens in id order (``[PAD]``, ``[UNK]``, then the words)."""
        return list(self._vocabulary)

    @classmethod
    def fit(cls, texts, sequence_length, max_tokens=None, min_count=1, lower=True, split="unicode_script"):
        """Builds the vocabulary from training texts and returns the tokenizer.

        Words are counted after the same split/lower-casing used at
        tokenization time, then sorted by count (descending) then text, and
        cut to ``max_tokens`` (including the 2 reserved ids).

        Args:
            texts: Iterable of ``str`` (the training split only).
            sequence_length: Length of every id sequence.
            max_tokens: Largest ``vocabulary_size`` (``None`` = no limit).
            min_count: Words seen fewer times are left out (OOV).
            lower: Lower-case text.
            split: ``"unicode_script"`` or ``"whitespace"``.

        Returns:
            A fitted ``VocabTokenizer``.

        Raises:
            ValueError: If ``texts`` is empty or an argument is invalid.

        Example:

        >>> tok = VocabTokenizer.fit(["a cat", "a dog"], sequence_length=3)
        >>> tok.vocabulary
        ['[PAD]', '[UNK]', 'a', 'cat', 'dog']
        """
        texts = [t for t in texts]
        if not texts:
            raise ValueError("`texts` must hold at least one training text. Received an empty iterable.")
        if max_tokens is not None and check.positive_int("max_tokens", max_tokens) < 3:
            raise ValueError(f"`max_tokens` must be at least 3 (2 reserved ids). Received: max_tokens={max_tokens}")
        min_count = check.positive_int("min_count", min_count)
        probe = cls([], sequence_length, lower=lower, split=split)
        counts = collections.Counter()
        for start in range(0, len(texts), 4096):
            words = probe.words(tf.constant(texts[start : start + 4096], tf.string))
            counts.update(w.decode("utf-8") for w in words.flat_values.numpy())
        ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        ranked = [w for w in ranked if w not in (PAD_TOKEN, OOV_TOKEN)]
        if max_tokens is not None:
            ranked = ranked[: max_tokens - 2]
        return cls(ranked, sequence_length, lower=lower, split=split)

    def words(self, texts):
        """Splits and lower-cases a 1-D batch of strings into a ragged batch of words."""
        texts = _check_texts(texts)
        if self.lower:
            texts = tf.strings.lower(texts, encoding="utf-8")
        return self._splitter.tokenize(texts)

    def __call__(self, texts):
        """Maps strings to ids; works eagerly, in ``Dataset.map`` and in ``tf.function``.

        Args:
            texts: A scalar or 1-D ``tf.string`` tensor.

        Returns:
            int32 ids of shape ``(sequence_length,)`` or ``(batch, sequence_length)``.
        """
        return _batched(self._ids, texts)

    def _ids(self, texts):
        words = self.words(texts)
        return _to_ids(words.with_flat_values(self._table.lookup(words.flat_values)), self.sequence_length)

    def detokenize(self, ids):
        """Maps ids back to space-joined (lower-cased) words, dropping padding.

        Args:
            ids: int ``(batch, L)`` ids.

        Returns:
            ``tf.string`` ``(batch,)``; OOV ids read ``[UNK]``.
        """
        ids = tf.ragged.boolean_mask(ids, tf.not_equal(ids, 0))
        return tf.strings.reduce_join(tf.gather(self._inverse, ids), axis=-1, separator=" ")

    def get_config(self):
        """Returns the constructor arguments other than the vocabulary."""
        return {"kind": self.kind, "sequence_length": self.sequence_length, "lower": self.lower, "split": self.split}

    def save(self, folder):
        """Writes ``tokenizer.json`` and ``vocab.txt`` into ``folder`` (created if needed).

        Example:

        >>> tok.save("saved_models/emoji/tokenizer")
        """
        _write_config(folder, self.get_config(), self.vocabulary)

    @classmethod
    def from_folder(cls, folder, config):
        vocabulary = _read_vocab_file(os.path.join(folder, VOCAB_FILE))
        if vocabulary[:2] != [PAD_TOKEN, OOV_TOKEN]:
            raise ValueError(f"{os.path.join(folder, VOCAB_FILE)} must start with {PAD_TOKEN} and {OOV_TOKEN}.")
        return cls(vocabulary[2:], config["sequence_length"], lower=config["lower"], split=config["split"])


class WordPieceTokenizer(tf.Module):
    """BERT-style WordPiece tokenizer (``tensorflow_text.FastBertTokenizer``).

    The text is normalised (lower-cased with accents stripped when
    ``lower``), split on whitespace and punctuation, and each word split into
    WordPieces (continuations start with ``##``).

    Args:
        vocabulary: A list of tokens or the path of a vocabulary file (one
            token per line). Token 0 must be ``pad_token`` (id 0 is padding)
            and ``unknown_token`` must be present.
        sequence_length: Length of every id sequence.
        lower: Lower-case and strip accents (uncased BERT vocabularies).
        unknown_token: Token of unknown words.
        pad_token: Token at id 0.

    Raises:
        ValueError: If the vocabulary breaks these rules.
        FileNotFoundError: If the vocabulary file is missing.

    Example:

    >>> tok = WordPieceTokenizer(["[PAD]", "[UNK]", "smil", "##ing", "face"], 4)
    >>> tok(tf.constant(["Smiling face"])).numpy()
    array([[2, 3, 4, 0]], dtype=int32)
    """

    kind = "wordpiece"

    def __init__(self, vocabulary, sequence_length, lower=True, unknown_token=OOV_TOKEN, pad_token=PAD_TOKEN, name=None):
        super().__init__(name=name)
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = _read_vocab_file(os.fspath(vocabulary))
        vocabulary = list(vocabulary)
        self.sequence_length = check.positive_int("sequence_length", sequence_length)
        if not vocabulary or vocabulary[0] != pad_token:
            raise ValueError(
                f"WordPiece vocabularies must have the padding token {pad_token!r} at id 0. "
                f"Received first token: {vocabulary[:1]!r}"
            )
        if unknown_token not in vocabulary:
            raise ValueError(f"The vocabulary has no unknown token {unknown_token!r}.")
        if len(set(vocabulary)) != len(vocabulary):
            repeated = [t for t, c in collections.Counter(vocabulary).items() if c > 1]
            raise ValueError(f"Vocabulary tokens must be unique; repeated: {repeated[:5]!r}")
        self._vocabulary = tuple(vocabulary)
        self.vocabulary_size = len(vocabulary)
        self.lower = bool(lower)
        self.unknown_token = unknown_token
        self.pad_token = pad_token
        self._tokenizer = tf_text.FastBertTokenizer(
            vocab=vocabulary,
            token_out_type=tf.int64,
            unknown_token=unknown_token,
            support_detokenization=True,
            lower_case_nfd_strip_accents=self.lower,
        )

    @classmethod
    def fit(cls, texts, vocabulary_size, sequence_length, lower=True, reserved_tokens=(PAD_TOKEN, OOV_TOKEN)):
        """Learns a WordPiece vocabulary from training texts.

        Uses ``tensorflow_text``'s ``bert_vocab_from_dataset``.

        Args:
            texts: Iterable of ``str`` (the training split only).
            vocabulary_size: Target vocabulary size (approximate, as in BERT).
            sequence_length: Length of every id sequence.
            lower: Lower-case and strip accents.
            reserved_tokens: Tokens placed first; must start with ``[PAD]``
                and include ``[UNK]``.

        Returns:
            A fitted ``WordPieceTokenizer``.

        Raises:
            ValueError: If ``texts`` is empty or an argument is invalid.

        Example:

        >>> tok = WordPieceTokenizer.fit(texts, vocabulary_size=500, sequence_length=16)
        """
        from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset  # noqa: PLC0415

        texts = [t for t in texts]
        if not texts:
            raise ValueError("`texts` must hold at least one training text. Received an empty iterable.")
        vocabulary_size = check.positive_int("vocabulary_size", vocabulary_size)
        vocab = bert_vocab_from_dataset.bert_vocab_from_dataset(
            tf.data.Dataset.from_tensor_slices(tf.constant(texts, tf.string)).batch(1024),
            vocab_size=vocabulary_size,
            reserved_tokens=list(reserved_tokens),
            bert_tokenizer_params={"lower_case": bool(lower)},
        )
        return cls(vocab, sequence_length, lower=lower)

    @property
    def vocabulary(self):
        """All tokens in id order."""
        return list(self._vocabulary)

    def __call__(self, texts):
        """Maps strings to ids; works eagerly, in ``Dataset.map`` and in ``tf.function``.

        Args:
            texts: A scalar or 1-D ``tf.string`` tensor.

        Returns:
            int32 ids of shape ``(sequence_length,)`` or ``(batch, sequence_length)``.
        """
        return _batched(lambda t: _to_ids(self._tokenizer.tokenize(t), self.sequence_length), texts)

    def detokenize(self, ids):
        """Maps ids back to text (WordPieces re-joined), dropping padding.

        Args:
            ids: int ``(batch, L)`` ids.

        Returns:
            ``tf.string`` ``(batch,)``.
        """
        ids = tf.ragged.boolean_mask(tf.cast(ids, tf.int64), tf.not_equal(ids, 0))
        return self._tokenizer.detokenize(ids)

    def get_config(self):
        """Returns the constructor arguments other than the vocabulary."""
        return {
            "kind": self.kind,
            "sequence_length": self.sequence_length,
            "lower": self.lower,
            "unknown_token": self.unknown_token,
            "pad_token": self.pad_token,
        }

    def save(self, folder):
        """Writes ``tokenizer.json`` and ``vocab.txt`` into ``folder`` (created if needed)."""
        _write_config(folder, self.get_config(), self.vocabulary)

    @classmethod
    def from_folder(cls, folder, config):
        return cls(
            os.path.join(folder, VOCAB_FILE),
            config["sequence_length"],
            lower=config["lower"],
            unknown_token=config["unknown_token"],
            pad_token=config["pad_token"],
        )


_KINDS = {VocabTokenizer.kind: VocabTokenizer, WordPieceTokenizer.kind: WordPieceTokenizer, "keras_hub": None}


def _tokenizer_class(kind):
    """The class of a saved ``kind``; ``KerasHubTokenizer`` is imported lazily (keras_hub is heavy)."""
    if kind == "keras_hub":
        from mmzoo.data.tokenizers.keras_hub import KerasHubTokenizer  # noqa: PLC0415 (circular at import time)

        return KerasHubTokenizer
    return _KINDS[kind]


def load_tokenizer(folder):
    """Loads a tokenizer written by ``save(folder)``; it produces identical ids.

    Args:
        folder: The folder holding ``tokenizer.json`` and ``vocab.txt`` (or,
            for a ``KerasHubTokenizer``, its ``preset`` folder).

    Returns:
        A ``VocabTokenizer``, ``WordPieceTokenizer`` or ``KerasHubTokenizer``.

    Raises:
        FileNotFoundError: If a file is missing.
        ValueError: If the config is not a tokenizer config this version reads.

    Example:

    >>> tok = load_tokenizer("saved_models/emoji/tokenizer")
    >>> ids = tok(tf.constant(["grinning face"]))
    """
    path = os.path.join(os.fspath(folder), CONFIG_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No tokenizer config in {folder}: expected {path}")
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    if config.get("format_version") != FORMAT_VERSION or config.get("kind") not in _KINDS:
        raise ValueError(
            f"{path} is not a tokenizer config this version reads (format_version {FORMAT_VERSION}, "
            f"kind one of {sorted(_KINDS)}). Received: format_version={config.get('format_version')!r}, "
            f"kind={config.get('kind')!r}"
        )
    return _tokenizer_class(config["kind"]).from_folder(os.fspath(folder), config)
