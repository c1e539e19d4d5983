"""The tokenizer interface shared by every kind, the save/load format and the kind registry.

A mmzoo tokenizer is a ``tf.Module`` (so an exported serving function tracks
its lookup tables) with:

* ``fit(texts, sequence_length, *, vocabulary_size=None, **kind_options)``:
  a classmethod that learns (or checks) the vocabulary on training texts and
  logs, once, what the fit leaves out: vocabulary caps (distinct words and
  share of training tokens that become ``[UNK]``) and truncation (how many
  training texts are longer than ``sequence_length``). ``vocabulary_size`` is
  keyword-only everywhere, so the same call means the same thing for every
  kind and an old positional call fails loudly.
* ``__call__(texts)``: a scalar or 1-D ``tf.string`` tensor -> int32 ids of
  shape ``(sequence_length,)`` or ``(batch, sequence_length)``, padded with
  id 0; runs eagerly, in ``tf.data.Dataset.map`` and in a ``tf.function``.
* ``save(folder)`` / ``load_tokenizer(folder)``: ``tokenizer.json`` (the
  ``get_config()`` plus ``format_version``) and the vocabulary files; the
  reloaded tokenizer gives identical ids.
* attributes ``sequence_length``, ``vocabulary_size`` and ``kind`` (the
  registry key written to ``tokenizer.json``).

This module imports no other tokenizer module: each kind's module imports it
and registers its class with ``register_kind``. The package's ``__init__``
imports every built-in kind, and Python always runs it before any of its
modules, so ``load_tokenizer`` finds them all without an import circle.
"""

from __future__ import annotations

import json
import logging
import os
import weakref

import tensorflow as tf

from mmzoo import _gfile
from mmzoo import _validation as check

logger = logging.getLogger("mmzoo.data.tokenizers")

PAD_TOKEN = "[PAD]"
OOV_TOKEN = "[UNK]"
CONFIG_FILE = "tokenizer.json"
VOCAB_FILE = "vocab.txt"
FORMAT_VERSION = 1
# What mmzoo.data.TextColumn and mmzoo.export need from a tokenizer.
INTERFACE = ("__call__", "save", "get_config", "sequence_length", "vocabulary_size")
_BATCH = 4096  # texts per eager batch when fitting or measuring

_KINDS = {}


def register_kind(cls):
    """Class decorator: makes ``load_tokenizer`` rebuild tokenizers of ``cls.kind``.

    Args:
        cls: A tokenizer class with a string ``kind`` and a classmethod
            ``from_folder(folder, config)``.

    Returns:
        ``cls`` unchanged.

    Raises:
        ValueError: If ``cls`` has no ``kind``/``from_folder``, or another
            class already registered its ``kind``.

    Example::

        @register_kind
        class MyTokenizer(Tokenizer):
            kind = "my_kind"
    """
    kind = getattr(cls, "kind", None)
    if not isinstance(kind, str) or not kind or not callable(getattr(cls, "from_folder", None)):
        raise ValueError(
            f"A tokenizer kind needs a non-empty string `kind` and a `from_folder` classmethod. Received: cls={cls!r}"
        )
    previous = _KINDS.get(kind)
    if previous is not None and _qualified(previous) != _qualified(cls):
        raise ValueError(f"Tokenizer kind {kind!r} is already registered by {previous!r}. Received: cls={cls!r}")
    _KINDS[kind] = cls
    return cls


def _qualified(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def registered_kinds():
    """The kinds ``load_tokenizer`` reads, sorted."""
    return sorted(_KINDS)


def check_texts(texts):
    """``texts`` as a ``tf.string`` tensor, or a ``ValueError``."""
    texts = tf.convert_to_tensor(texts)
    if texts.dtype != tf.string:
        raise ValueError(f"Tokenizers take tf.string text. Received dtype: {texts.dtype.name}")
    return texts


def to_ids(ragged_ids, sequence_length):
    """Ragged int ids (batch, None) -> int32 (batch, sequence_length), 0-padded and truncated."""
    ids = tf.cast(ragged_ids, tf.int32)
    return ids.to_tensor(default_value=0, shape=[None, sequence_length])


def batched(fn, texts):
    """Applies ``fn`` (rank-1 strings -> (batch, L)) to a scalar or a vector."""
    texts = check_texts(texts)
    if texts.shape.rank == 0:
        return fn(tf.reshape(texts, [1]))[0]
    if texts.shape.rank != 1:
        raise ValueError(f"Tokenizers take a scalar or a 1-D batch of strings. Received shape: {texts.shape}")
    return fn(texts)


def text_list(texts):
    """The training texts as a non-empty list of ``str``.

    Raises:
        ValueError: If ``texts`` is a single string, empty, or holds non-strings.
    """
    if isinstance(texts, (str, bytes)):
        raise ValueError(
            f"`texts` must be an iterable of training texts, not one string. Received: texts={texts!r}"
        )
    texts = list(texts)
    if not texts:
        raise ValueError("`texts` must hold at least one training text. Received an empty iterable.")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise ValueError(f"`texts` must hold str values. Received: texts[{bad}]={texts[bad]!r}")
    return texts


PROGRESS_MIN_TEXTS = 50_000
"""Tokenizer fitting on at least this many texts shows a progress bar."""


def chunks(texts, description=None):
    """Eager ``tf.string`` batches of at most 4,096 texts.

    Args:
        texts: A list of ``str``.
        description: What the pass does (printed with a ``keras.utils.Progbar``
            over the texts when there are at least ``PROGRESS_MIN_TEXTS``);
            ``None`` for no progress bar.

    Yields:
        ``tf.string`` tensors of up to 4,096 texts, in order.
    """
    progress = None
    if description and len(texts) >= PROGRESS_MIN_TEXTS:
        import keras  # noqa: PLC0415

        print(description)
        progress = keras.utils.Progbar(len(texts), unit_name="text")
    for start in range(0, len(texts), _BATCH):
        yield tf.constant(texts[start : start + _BATCH], tf.string)
        if progress is not None:
            progress.update(min(start + _BATCH, len(texts)))


def optional_vocabulary_size(value, minimum):
    """``None`` or a ``vocabulary_size`` of at least ``minimum``."""
    if value is None:
        return None
    check.positive_int("vocabulary_size", value)
    if value < minimum:
        raise ValueError(
            f"`vocabulary_size` must be at least {minimum} (the reserved tokens and one more). "
            f"Received: vocabulary_size={value}"
        )
    return int(value)


def read_vocab_file(path):
    """The lines of a vocabulary file (one token per line)."""
    if not _gfile.isfile(path):
        raise FileNotFoundError(f"Vocabulary file not found: {path}")
    with _gfile.open_text(path) as f:
        return [line.rstrip("\n") for line in f]


def write_config(folder, config, vocabulary=None):
    """Writes ``tokenizer.json`` (plus ``vocab.txt`` when ``vocabulary`` is given) into ``folder``."""
    folder = os.fspath(folder)
    tf.io.gfile.makedirs(folder)
    _gfile.write_text(os.path.join(folder, CONFIG_FILE),
                      json.dumps({"format_version": FORMAT_VERSION, **config}, indent=2, sort_keys=True))
    if vocabulary is not None:
        _gfile.write_text(os.path.join(folder, VOCAB_FILE), "".join(token + "\n" for token in vocabulary))


def percent(part, whole):
    return 100.0 * part / whole if whole else 0.0


_GRAPH_FUNCTIONS = weakref.WeakKeyDictionary()


def graph_function(tokenizer, method, autograph=False):
    """``tf.function`` of ``tokenizer.<method>`` (1-D strings), traced once, cached without keeping it alive.

    Held outside the tokenizer (a ``tf.Module``), so a SavedModel does not save it as an attribute.
    """
    functions = _GRAPH_FUNCTIONS.setdefault(tokenizer, {})
    if (method, autograph) not in functions:
        ref = weakref.ref(tokenizer)

        def run(texts):
            return getattr(ref(), method)(texts)

        functions[method, autograph] = tf.function(run, autograph=autograph,
                                                   input_signature=[tf.TensorSpec([None], tf.string)])
    return functions[method, autograph]


class Tokenizer(tf.Module):
    """Base of the mmzoo tokenizers: strings -> int32 ids of a fixed length.

    Subclasses set ``kind``, ``sequence_length`` and ``vocabulary_size``,
    implement ``fit``, ``get_config``, ``from_folder`` and ``ragged_ids``
    (the unpadded ids of a 1-D batch), and set ``unknown_id`` (``None`` when
    the vocabulary has no unknown token); ``__call__``, ``coverage`` and the
    fit report come from here.
    """

    kind = None
    unknown_id = 1

    @classmethod
    def fit(cls, texts, sequence_length, *, vocabulary_size=None, **kind_options):
        """Learns the vocabulary of ``texts`` and returns the tokenizer (see each kind)."""
        raise NotImplementedError

    def ragged_ids(self, texts):
        """Unpadded, untruncated ids (``tf.RaggedTensor`` (batch, None)) of a 1-D string batch."""
        raise NotImplementedError

    def __call__(self, texts):
        """Maps strings to ids; works eagerly, in ``Dataset.map`` and in ``tf.function``.

        Args:
            texts: A scalar or 1-D ``tf.string`` tensor.

        Returns:
            int32 ids of shape ``(sequence_length,)`` or ``(batch, sequence_length)``.
        """
        if tf.executing_eagerly():
            return batched(self._padded_ids, texts)
        # Graph code (each ``Dataset.map``, each serving signature) calls one traced function per tokenizer:
        # tracing tensorflow-text's UnicodeScriptTokenizer builds about 1,650 ops (1.2-1.9 s on 2 cores), which
        # every dataset of a text column paid again.
        return batched(graph_function(self, "_padded_ids"), texts)

    def _padded_ids(self, texts):
        return to_ids(self.ragged_ids(texts), self.sequence_length)

    def coverage(self, texts):
        """Counts what tokenizing ``texts`` loses: truncated texts and unknown tokens.

        Args:
            texts: An iterable of ``str``.

        Returns:
            A dict: ``texts`` (how many), ``truncated`` (how many have more
            than ``sequence_length`` ids), ``longest`` (most ids of one text),
            ``tokens`` (ids before truncation, padding excluded) and
            ``unknown_tokens`` (ids equal to the unknown id; 0 when the
            vocabulary has none).
        """
        texts = text_list(texts)
        truncated = longest = tokens = unknown = 0
        for batch in chunks(texts, "Tokenizer.coverage: tokenizing"):
            ids = self.ragged_ids(batch)
            lengths = ids.row_lengths().numpy()
            truncated += int((lengths > self.sequence_length).sum())
            longest = max(longest, int(lengths.max(initial=0)))
            tokens += int(lengths.sum())
            if self.unknown_id is not None:
                unknown += int(tf.reduce_sum(tf.cast(tf.equal(ids.flat_values, self.unknown_id), tf.int64)))
        return {"texts": len(texts), "truncated": truncated, "longest": longest, "tokens": tokens,
                "unknown_tokens": unknown}

    def report_fit(self, texts, unknown_reason=None):
        """Logs, once, how many training texts are truncated and how many tokens are unknown.

        Args:
            texts: The training texts.
            unknown_reason: Why tokens are unknown (appended to that message);
                ``None`` skips the unknown-token message (the caller reports it).

        Returns:
            The ``coverage(texts)`` dict.
        """
        stats = self.coverage(texts)
        name = type(self).__name__
        if stats["truncated"]:
            logger.warning(
                "%s.fit: %s of %s training texts (%.1f%%) are longer than sequence_length=%d tokens and will be "
                "truncated (longest: %d tokens).",
                name, f"{stats['truncated']:,}", f"{stats['texts']:,}", percent(stats["truncated"], stats["texts"]),
                self.sequence_length, stats["longest"],
            )
        if unknown_reason is not None and stats["unknown_tokens"]:
            logger.warning(
                "%s.fit: %s of %s training tokens (%.1f%%) map to the unknown token (%s).",
                name, f"{stats['unknown_tokens']:,}", f"{stats['tokens']:,}",
                percent(stats["unknown_tokens"], stats["tokens"]), unknown_reason,
            )
        return stats

    def get_config(self):
        """Returns the JSON-able settings written to ``tokenizer.json``."""
        raise NotImplementedError

    @property
    def vocabulary(self):
        """All tokens in id order."""
        raise NotImplementedError

    def save(self, folder):
        """Writes ``tokenizer.json`` and ``vocab.txt`` into ``folder`` (created if needed).

        Args:
            folder: Output folder; ``load_tokenizer(folder)`` reads it back.
        """
        write_config(folder, self.get_config(), self.vocabulary)

    @classmethod
    def from_folder(cls, folder, config):
        """Rebuilds the tokenizer from ``save(folder)`` output and its parsed config."""
        raise NotImplementedError


def check_tokenizer(argument, tokenizer):
    """Returns ``tokenizer`` if it has the interface that ``TextColumn`` and ``mmzoo.export`` use.

    That is a ``tf.Module`` (the export tracks its tables) that is callable
    and has ``save``, ``get_config``, ``sequence_length`` and
    ``vocabulary_size``: the mmzoo kinds (``VocabTokenizer``,
    ``WordPieceTokenizer``, ``KerasHubTokenizer``) or a ``Tokenizer``
    subclass of your own.

    Args:
        argument: The argument name used in the error message.
        tokenizer: The object to check.

    Returns:
        ``tokenizer``.

    Raises:
        ValueError: For anything else (a KerasHub preprocessor, a TF-Hub
            text preprocessor, a plain function), naming ``argument``, the
            missing parts and the accepted kinds.
    """
    missing = [name for name in INTERFACE if not hasattr(tokenizer, name)]
    if not callable(tokenizer) and "__call__" not in missing:
        missing.insert(0, "__call__")
    if not isinstance(tokenizer, tf.Module):
        missing.insert(0, "tf.Module base")
    if not missing:
        length = tokenizer.sequence_length
        if isinstance(length, bool) or not isinstance(length, int) or length <= 0:
            missing.append("a positive int sequence_length")
    if missing:
        raise ValueError(
            f"`{argument}` must be a mmzoo tokenizer, the kinds that mmzoo.export can save: "
            f"{', '.join(sorted(c.__name__ for c in _KINDS.values()))}, or a tf.Module with "
            f"{', '.join(INTERFACE)} (subclass mmzoo.data.tokenizers.Tokenizer). Wrap a KerasHub preprocessor in "
            f"KerasHubTokenizer; TF-Hub text preprocessors are not supported. Missing: {', '.join(missing)}. "
            f"Received: {argument}={tokenizer!r}"
        )
    return tokenizer


def load_tokenizer(folder):
    """Loads a tokenizer written by ``save(folder)``; it produces identical ids.

    Args:
        folder: The folder holding ``tokenizer.json`` and the vocabulary
            files (``vocab.txt``, or a KerasHub ``preset`` folder).

    Returns:
        A tokenizer of the saved kind (``VocabTokenizer``,
        ``WordPieceTokenizer``, ``KerasHubTokenizer`` or a kind registered
        with ``register_kind``).

    Raises:
        FileNotFoundError: If a file is missing.
        ValueError: If the config is not a tokenizer config this version reads.

    Example::

        tok.save("saved_models/emoji/tokenizer")
        again = load_tokenizer("saved_models/emoji/tokenizer")
        ids = again(tf.constant(["grinning face"]))
    """
    folder = os.fspath(folder)
    path = os.path.join(folder, CONFIG_FILE)
    if not _gfile.isfile(path):
        raise FileNotFoundError(f"No tokenizer config in {folder}: expected {path}")
    with _gfile.open_text(path) as f:
        config = json.load(f)
    if config.get("format_version") != FORMAT_VERSION or config.get("kind") not in _KINDS:
        raise ValueError(
            f"{path} is not a tokenizer config this version reads (format_version {FORMAT_VERSION}, "
            f"kind one of {registered_kinds()}). Received: format_version={config.get('format_version')!r}, "
            f"kind={config.get('kind')!r}"
        )
    return _KINDS[config["kind"]].from_folder(folder, config)
