"""``mmzoo.data``: real files -> ``tf.data`` pipelines of model inputs.

Manifests (CSV / JSONL / Python lists) name the files and text of each
example; column specs map manifest columns to model inputs and decode them
inside ``tf.data``; tokenizers turn text into int32 ids; ``make_dataset``
builds the parallel, cached, shuffled, batched pipeline with a bad-row
policy. The ready datasets built on it live in ``mmzoo.datasets``.

Example:

>>> import os
>>> from mmzoo import data
>>> root = os.path.join(data.resolve_data_dir(), "openmoji")
>>> manifest = data.from_jsonl(os.path.join(root, "openmoji.jsonl")).subset(range(64))
>>> tok = data.VocabTokenizer.fit([r["annotation"] for r in manifest.records], sequence_length=8)
>>> ds = data.make_dataset(
...     manifest,
...     {"image": data.ImageColumn("images/{hexcode}.png", (72, 72, 3)), "text": data.TextColumn("annotation", tok)},
...     label=data.LabelColumn("group"),
...     batch_size=16, shuffle=True, seed=0, on_error="skip",
... )
>>> inputs, labels = next(iter(ds))
>>> inputs["image"].shape, inputs["text"].shape, labels.shape
(TensorShape([16, 72, 72, 3]), TensorShape([16, 8]), TensorShape([16]))
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
from mmzoo.data.grouped import group_batches
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
    "group_batches",
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
