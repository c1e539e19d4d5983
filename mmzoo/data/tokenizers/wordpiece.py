"""``WordPieceTokenizer``: BERT-style WordPiece (tensorflow-text ``FastBertTokenizer``) with a
vocabulary learner that reaches the size asked for."""

from __future__ import annotations

import collections
import os

import tensorflow as tf
import tensorflow_text as tf_text

from mmzoo import _validation as check
from mmzoo.data.tokenizers import base

JOINER = "##"
MAX_WORD_LENGTH = 50  # characters; longer training words are left out of learning (and map to [UNK])
NUM_ITERATIONS = 4


def _learner():
    from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib  # noqa: PLC0415

    return wordpiece_tokenizer_learner_lib


def learn_vocabulary(word_counts, vocabulary_size, reserved_tokens, num_iterations=NUM_ITERATIONS):
    """Learns a WordPiece vocabulary of ``vocabulary_size`` tokens from word counts.

    tensorflow-text's learner (which KerasHub's
    ``compute_word_piece_vocabulary`` and ``bert_vocab_from_dataset`` call)
    keeps the pieces seen at least ``t`` times and searches ``t`` between
    ``lower_thresh=10`` and the top count. Both wrappers leave those defaults
    in place, so on a small corpus the vocabulary stops at the pieces seen 10
    times (629 tokens on the OpenMoji texts whatever size is asked above
    that). Here the threshold is searched down to 1 and the vocabulary of the
    largest threshold that reaches the size is cut to exactly the size,
    dropping its rarest multi-character pieces; every character of the
    alphabet and its ``##`` continuation stays, so every word of the
    alphabet can still be spelled.

    Args:
        word_counts: ``{word: count}`` of the pre-split (normalised) training words.
        vocabulary_size: Target size (reserved tokens included), or ``None``
            for everything the corpus holds (threshold 1).
        reserved_tokens: Tokens placed first.
        num_iterations: Learner iterations per threshold.

    Returns:
        ``(vocabulary, info)``: the token list and a dict with
        ``threshold``, ``alphabet`` (characters kept),
        ``left_out_words`` (distinct words not learned: too long, or with a
        character outside the alphabet) and ``corpus_limit`` (the most tokens
        the corpus gives, when below ``vocabulary_size``).

    Raises:
        ValueError: If ``vocabulary_size`` cannot hold the reserved tokens
            and one character.
    """
    learner = _learner()
    reserved_tokens = list(reserved_tokens)
    words = [(w, c) for w, c in word_counts.items() if w and w not in reserved_tokens]
    if not words:
        raise ValueError("The training texts hold no words to learn WordPieces from.")
    short = [(w, c) for w, c in words if len(w) <= MAX_WORD_LENGTH]
    char_counts = collections.Counter()
    for word, count in short:
        for char in word:
            char_counts[char] += count
    # Each character costs 2 ids (``c`` and ``##c``); a small vocabulary keeps the most frequent ones.
    alphabet_size = len(char_counts)
    if vocabulary_size is not None:
        room = (vocabulary_size - len(reserved_tokens)) // 2
        if room < 1:
            raise ValueError(
                f"`vocabulary_size` must be at least {len(reserved_tokens) + 2} (the reserved tokens and one "
                f"character with its {JOINER} continuation). Received: vocabulary_size={vocabulary_size}"
            )
        alphabet_size = min(alphabet_size, room)
    alphabet = {c for c, _ in sorted(char_counts.items(), key=lambda x: (-x[1], x[0]))[:alphabet_size]}
    learn_words = [(w, c) for w, c in short if all(ch in alphabet for ch in w)]
    if not learn_words:
        raise ValueError(
            f"No training word can be spelled with the {len(alphabet)} most frequent characters that "
            f"`vocabulary_size` leaves room for. Received: vocabulary_size={vocabulary_size}"
        )
    params = learner.Params(
        upper_thresh=None, lower_thresh=1, num_iterations=num_iterations, max_input_tokens=None,
        max_token_length=MAX_WORD_LENGTH, max_unique_chars=len(alphabet), vocab_size=vocabulary_size or 0,
        slack_ratio=0.0, include_joiner_token=True, joiner=JOINER, reserved_tokens=reserved_tokens,
    )
    cache = {}

    def vocab_at(threshold):
        if threshold not in cache:
            cache[threshold] = learner.learn_with_thresh(learn_words, threshold, params)
        return cache[threshold]

    info = {"alphabet": len(alphabet), "left_out_words": len(words) - len(learn_words), "corpus_limit": None}
    if vocabulary_size is None or len(vocab_at(1)) <= vocabulary_size:
        if vocabulary_size is not None and len(vocab_at(1)) < vocabulary_size:
            info["corpus_limit"] = len(vocab_at(1))
        return vocab_at(1), {**info, "threshold": 1}
    # Vocabulary size falls as the threshold grows: gallop up, then bisect for the largest
    # threshold whose vocabulary still reaches ``vocabulary_size``.
    good, bad = 1, 2
    top = max(c for _, c in learn_words) + 1
    while bad < top and len(vocab_at(bad)) >= vocabulary_size:
        good, bad = bad, min(bad * 2, top)
    while bad - good > 1:
        middle = (good + bad) // 2
        good, bad = (middle, bad) if len(vocab_at(middle)) >= vocabulary_size else (good, middle)
    vocabulary = vocab_at(good)
    chars = sorted(alphabet)
    kept = list(dict.fromkeys(reserved_tokens + chars + [JOINER + c for c in chars]))
    keep = set(kept)
    pieces = [t for t in vocabulary if t not in keep]  # the learner orders them by count, descending
    return kept + pieces[: vocabulary_size - len(kept)], {**info, "threshold": good}


def count_words(texts, lower):
    """``{word: count}`` of ``texts`` split and normalised exactly as ``FastBertTokenizer`` does.

    A ``FastBertTokenizer`` whose vocabulary spells no word maps each word to
    one unknown token; its offsets cut the words out of the text, and
    ``FastBertNormalizer`` applies the same lower-casing and accent
    stripping. (The same counts as tensorflow-text's ``BasicTokenizer``, which
    ``bert_vocab_from_dataset`` uses, through public APIs only.)
    """
    splitter = tf_text.FastBertTokenizer(
        vocab=[base.OOV_TOKEN, "\ue000"], token_out_type=tf.string, unknown_token=base.OOV_TOKEN,
        lower_case_nfd_strip_accents=bool(lower),
    )
    normalizer = tf_text.FastBertNormalizer(lower_case_nfd_strip_accents=bool(lower))
    counts = collections.Counter()
    for batch in base.chunks(texts, "WordPieceTokenizer.fit: counting words"):
        tokens, starts, ends = splitter.tokenize_with_offsets(batch)
        words = tf.strings.substr(
            tf.gather(batch, tokens.value_rowids()), starts.flat_values, ends.flat_values - starts.flat_values
        )
        counts.update(w.decode("utf-8") for w in normalizer.normalize(words).numpy())
    return counts


@base.register_kind
class WordPieceTokenizer(base.Tokenizer):
    """BERT-style WordPiece tokenizer (``tensorflow_text.FastBertTokenizer``).

    The text is normalised (lower-cased with accents stripped when
    ``lower``), split on whitespace and punctuation, and each word split into
    WordPieces (continuations start with ``##``); a word that cannot be
    spelled with the vocabulary maps to one unknown id.

    Args:
        vocabulary: A list of tokens or the path of a vocabulary file (one
            token per line). Token 0 must be ``pad_token`` (id 0 is padding)
            and ``unknown_token`` must be present.
        sequence_length: Length of every id sequence.
        lower: Lower-case and strip accents (uncased BERT vocabularies).
        unknown_token: Token of unknown words.
        pad_token: Token at id 0.
        name: The ``tf.Module`` name.

    Raises:
        ValueError: If the vocabulary breaks these rules.
        FileNotFoundError: If the vocabulary file is missing.

    Example:

    >>> import tensorflow as tf
    >>> from mmzoo.data.tokenizers import WordPieceTokenizer
    >>> tok = WordPieceTokenizer(["[PAD]", "[UNK]", "smil", "##ing", "face"], sequence_length=4)
    >>> tok(tf.constant(["Smiling face"])).numpy().tolist()
    [[2, 3, 4, 0]]
    """

    kind = "wordpiece"

    def __init__(
        self, vocabulary, sequence_length, lower=True, unknown_token=base.OOV_TOKEN, pad_token=base.PAD_TOKEN,
        name=None,
    ):
        super().__init__(name=name)
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = base.read_vocab_file(os.fspath(vocabulary))
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
        self.unknown_id = vocabulary.index(unknown_token)
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
    def fit(
        cls, texts, sequence_length, *, vocabulary_size=None, lower=True,
        reserved_tokens=(base.PAD_TOKEN, base.OOV_TOKEN),
    ):
        """Learns a WordPiece vocabulary of ``vocabulary_size`` tokens from training texts.

        Words are counted after the normalisation and split used at
        tokenization time, and ``learn_vocabulary`` learns exactly
        ``vocabulary_size`` tokens when the corpus holds that many pieces (it
        logs a warning with the size reached when it does not). Training
        texts longer than ``sequence_length`` ids and training tokens that
        map to ``[UNK]`` are each logged once (``logging`` WARNING on
        ``"mmzoo.data.tokenizers"``).

        Args:
            texts: Iterable of ``str`` (the training split only).
            sequence_length: Length of every id sequence.
            vocabulary_size: Vocabulary size, reserved tokens included
                (keyword-only; ``None`` = every piece the corpus gives, about
                one token per distinct word).
            lower: Lower-case and strip accents.
            reserved_tokens: Tokens placed first; must start with ``[PAD]``
                and include ``[UNK]``.

        Returns:
            A fitted ``WordPieceTokenizer``.

        Raises:
            ValueError: If ``texts`` is empty or an argument is invalid.

        Example:

        >>> from mmzoo.data.tokenizers import WordPieceTokenizer
        >>> texts = ["grinning face", "grinning cat face", "smiling face", "smiling cat"] * 5
        >>> tok = WordPieceTokenizer.fit(texts, sequence_length=8, vocabulary_size=28)
        >>> tok.vocabulary_size, tok.vocabulary[-2:]
        (28, ['##ing', 'face'])
        """
        texts = base.text_list(texts)
        reserved_tokens = list(reserved_tokens)
        vocabulary_size = base.optional_vocabulary_size(vocabulary_size, len(reserved_tokens) + 2)
        check.positive_int("sequence_length", sequence_length)
        if reserved_tokens[:1] != [base.PAD_TOKEN] or base.OOV_TOKEN not in reserved_tokens:
            raise ValueError(
                f"`reserved_tokens` must start with {base.PAD_TOKEN!r} and include {base.OOV_TOKEN!r}. "
                f"Received: reserved_tokens={reserved_tokens!r}"
            )
        vocabulary, info = learn_vocabulary(count_words(texts, lower), vocabulary_size, reserved_tokens)
        if info["corpus_limit"] is not None:
            base.logger.warning(
                "WordPieceTokenizer.fit learned %s tokens, fewer than vocabulary_size=%d: the training texts "
                "hold no more pieces (every piece seen once is in).",
                f"{info['corpus_limit']:,}", vocabulary_size,
            )
        tokenizer = cls(vocabulary, sequence_length, lower=lower)
        tokenizer.report_fit(
            texts,
            unknown_reason=f"distinct training words left out of learning: {info['left_out_words']:,}, longer than "
            f"{MAX_WORD_LENGTH} characters or with a character outside the {info['alphabet']} kept",
        )
        return tokenizer

    @property
    def vocabulary(self):
        """All tokens in id order."""
        return list(self._vocabulary)

    def ragged_ids(self, texts):
        """Unpadded int64 ids (``tf.RaggedTensor`` (batch, None)) of a 1-D string batch."""
        return self._tokenizer.tokenize(base.check_texts(texts))

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

    @classmethod
    def from_folder(cls, folder, config):
        """Rebuilds the tokenizer from ``save(folder)`` output and its parsed config."""
        return cls(
            os.path.join(folder, base.VOCAB_FILE),
            config["sequence_length"],
            lower=config["lower"],
            unknown_token=config["unknown_token"],
            pad_token=config["pad_token"],
        )
