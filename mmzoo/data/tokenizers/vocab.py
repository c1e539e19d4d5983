"""``VocabTokenizer``: word-level tokenizer on tensorflow-text splitters and a TF lookup table."""

from __future__ import annotations

import collections
import os

import tensorflow as tf
import tensorflow_text as tf_text

from mmzoo import _validation as check
from mmzoo.data.tokenizers import base

SPLITS = ("whitespace", "unicode_script")


@base.register_kind
class VocabTokenizer(base.Tokenizer):
    """Word-level tokenizer: split, lower-case, vocabulary lookup, pad/truncate.

    Ids: 0 is padding, 1 is the out-of-vocabulary id, then the vocabulary in
    order (``vocabulary_size = len(vocabulary) + 2``), the id layout of
    ``keras.layers.TextVectorization``.

    Why not ``keras.layers.TextVectorization`` itself: its built-in
    ``standardize="lower"`` lower-cases ASCII only (``"CAFÉ"`` stays
    unknown when the vocabulary holds ``"café"``) and its built-in splits
    either keep punctuation glued to words (``"whitespace"``) or delete it
    (``"lower_and_strip_punctuation"`` turns ``"a,b"`` into ``"ab"``). With
    our own lower-casing and ``tensorflow_text`` splitter plugged in as
    callables it would only contribute the lookup table and the padding, at
    the price of importing Keras into ``mmzoo.data``; ``fit`` needs the word
    counts anyway to report what the vocabulary cap leaves out. So this class
    keeps a ``tf.lookup.StaticHashTable`` (tracked by exports) behind the
    same ids.

    Args:
        vocabulary: The known words (unique, non-empty, without whitespace;
            not the pad or OOV token).
        sequence_length: Length of every id sequence.
        lower: Lower-case text (Unicode-aware) before lookup.
        split: ``"unicode_script"`` (default: also splits punctuation and
            changes of script off words) or ``"whitespace"``.
        name: The ``tf.Module`` name.

    Raises:
        ValueError: If an argument is invalid (naming the bad token).

    Example:

    >>> import tensorflow as tf
    >>> from mmzoo.data.tokenizers import VocabTokenizer
    >>> tok = VocabTokenizer(["grinning", "face"], sequence_length=4)
    >>> tok(tf.constant(["Grinning cat face"])).numpy().tolist()
    [[2, 1, 3, 0]]
    """

    kind = "vocab"
    unknown_id = 1

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
            if token in (base.PAD_TOKEN, base.OOV_TOKEN) or token in seen:
                raise ValueError(f"Vocabulary token {token!r} (vocabulary[{i}]) is reserved or repeated.")
            seen.add(token)
        self._vocabulary = tuple([base.PAD_TOKEN, base.OOV_TOKEN] + vocabulary)
        self.vocabulary_size = len(self._vocabulary)
        self._splitter = (
            tf_text.UnicodeScriptTokenizer() if split == "unicode_script" else tf_text.WhitespaceTokenizer()
        )
        keys = tf.constant(vocabulary if vocabulary else [""], tf.string)
        values = tf.range(2, 2 + len(keys), dtype=tf.int64)
        self._table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), default_value=1)
        self._inverse = tf.constant(self._vocabulary, tf.string)

    @property
    def vocabulary(self):
        """All tokens in id order (``[PAD]``, ``[UNK]``, then the words)."""
        return list(self._vocabulary)

    @classmethod
    def fit(cls, texts, sequence_length, *, vocabulary_size=None, min_count=1, lower=True, split="unicode_script"):
        """Builds the vocabulary from training texts and returns the tokenizer.

        Words are counted after the same split/lower-casing used at
        tokenization time, sorted by count (descending) then text, and cut to
        ``vocabulary_size`` ids (the 2 reserved ids included). The words the
        cap (or ``min_count``) leaves out, with the share of training tokens
        that become ``[UNK]``, and the training texts longer than
        ``sequence_length`` are each logged once (``logging`` WARNING on
        ``"mmzoo.data.tokenizers"``).

        Args:
            texts: Iterable of ``str`` (the training split only).
            sequence_length: Length of every id sequence.
            vocabulary_size: Largest ``vocabulary_size`` (keyword-only;
                ``None`` = every word seen ``min_count`` times).
            min_count: Words seen fewer times are left out (OOV).
            lower: Lower-case text.
            split: ``"unicode_script"`` or ``"whitespace"``.

        Returns:
            A fitted ``VocabTokenizer``.

        Raises:
            ValueError: If ``texts`` is empty or an argument is invalid.

        Example:

        >>> from mmzoo.data.tokenizers import VocabTokenizer
        >>> tok = VocabTokenizer.fit(["a cat", "a dog"], sequence_length=3)
        >>> tok.vocabulary
        ['[PAD]', '[UNK]', 'a', 'cat', 'dog']
        """
        texts = base.text_list(texts)
        vocabulary_size = base.optional_vocabulary_size(vocabulary_size, 3)
        min_count = check.positive_int("min_count", min_count)
        probe = cls([], sequence_length, lower=lower, split=split)
        counts = collections.Counter()
        for batch in base.chunks(texts, "VocabTokenizer.fit: counting words"):
            counts.update(w.decode("utf-8") for w in probe.words(batch).flat_values.numpy())
        ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        ranked = [w for w in ranked if w not in (base.PAD_TOKEN, base.OOV_TOKEN)]
        if vocabulary_size is not None:
            ranked = ranked[: vocabulary_size - 2]
        tokenizer = cls(ranked, sequence_length, lower=lower, split=split)
        kept = set(ranked)
        left_out = [w for w in counts if w not in kept]
        if left_out:
            causes = [f"vocabulary_size={vocabulary_size}"] if vocabulary_size is not None else []
            causes += [f"min_count={min_count}"] if min_count > 1 else []
            unknown, total = sum(counts[w] for w in left_out), sum(counts.values())
            base.logger.warning(
                "VocabTokenizer.fit: %s leaves out %s of %s distinct training words; %s of %s training tokens "
                "(%.1f%%) become [UNK].",
                " and ".join(causes) or "the reserved tokens", f"{len(left_out):,}", f"{len(counts):,}",
                f"{unknown:,}", f"{total:,}", base.percent(unknown, total),
            )
        tokenizer.report_fit(texts)
        return tokenizer

    def words(self, texts):
        """Splits and lower-cases a 1-D batch of strings into a ragged batch of words."""
        texts = base.check_texts(texts)
        if self.lower:
            texts = tf.strings.lower(texts, encoding="utf-8")
        return self._splitter.tokenize(texts)

    def ragged_ids(self, texts):
        """Unpadded int64 ids (``tf.RaggedTensor`` (batch, None)) of a 1-D string batch."""
        words = self.words(texts)
        return words.with_flat_values(self._table.lookup(words.flat_values))

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

    @classmethod
    def from_folder(cls, folder, config):
        """Rebuilds the tokenizer from ``save(folder)`` output and its parsed config."""
        path = os.path.join(folder, base.VOCAB_FILE)
        vocabulary = base.read_vocab_file(path)
        if vocabulary[:2] != [base.PAD_TOKEN, base.OOV_TOKEN]:
            raise ValueError(f"{path} must start with {base.PAD_TOKEN} and {base.OOV_TOKEN}.")
        return cls(vocabulary[2:], config["sequence_length"], lower=config["lower"], split=config["split"])
