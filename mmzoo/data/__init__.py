"""``mmzoo.data``: real files -> ``tf.data`` pipelines of model inputs.

Manifests (CSV / JSONL / Python lists) name the files and text of each
example; column specs map manifest columns to model inputs and decode them
inside ``tf.data``; tokenizers turn text into int32 ids; ``make_dataset``
builds the parallel, cached, shuffled, batched pipeline with a bad-row
policy. The ready datasets built on it live in ``mmzoo.datasets``.

Example:

>>> from mmzoo import data
>>> tok = data.VocabTokenizer.fit(train_texts, sequence_length=16)
>>> ds = data.make_dataset(
...     "train.csv",
...     {"image": data.ImageColumn("path", (72, 72, 3)), "text": data.TextColumn("caption", tok)},
...     label=data.LabelColumn("label", classes=["cat", "dog"]),
...     batch_size=64, shuffle=True, seed=0, on_error="skip",
... )
"""

from mmzoo.data.audio import (
    UnsupportedAudioFormatError,
    audio_decoder,
    decode_wav,
    fit_length,
    resample,
)
from mmzoo.data.augment import audio_augmentation, chain, image_augmentation, spec_augment
from mmzoo.data.balance import class_counts, class_weights, rebalance
from mmzoo.data.columns import AudioColumn, ImageColumn, LabelColumn, TextColumn
from mmzoo.data.image import decode_image, load_image
from mmzoo.data.labels import MultiLabelColumn, RegressionLabel
from mmzoo.data.manifest import Manifest, from_csv, from_jsonl, from_lists, from_records, read_manifest
from mmzoo.data.paths import resolve_data_dir
from mmzoo.data.pipeline import BadRowError, ErrorReport, make_dataset
from mmzoo.data.splits import hash_split, split_of, stratified_kfold, stratified_split
from mmzoo.data.tabular import CategoricalColumn, NumericColumn
from mmzoo.data.tokenizers import KerasHubTokenizer, VocabTokenizer, WordPieceTokenizer, load_tokenizer

__all__ = [
    "AudioColumn",
    "BadRowError",
    "CategoricalColumn",
    "ErrorReport",
    "ImageColumn",
    "KerasHubTokenizer",
    "LabelColumn",
    "Manifest",
    "MultiLabelColumn",
    "NumericColumn",
    "RegressionLabel",
    "TextColumn",
    "UnsupportedAudioFormatError",
    "VocabTokenizer",
    "WordPieceTokenizer",
    "audio_augmentation",
    "audio_decoder",
    "chain",
    "class_counts",
    "class_weights",
    "decode_image",
    "decode_wav",
    "fit_length",
    "from_csv",
    "from_jsonl",
    "from_lists",
    "from_records",
    "hash_split",
    "image_augmentation",
    "load_image",
    "load_tokenizer",
    "make_dataset",
    "read_manifest",
    "rebalance",
    "resample",
    "resolve_data_dir",
    "spec_augment",
    "split_of",
    "stratified_kfold",
    "stratified_split",
]
