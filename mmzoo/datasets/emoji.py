"""OpenMoji tasks: ``emoji_groups`` (image + text -> 11 groups) and
``emoji_retrieval`` (image <-> annotation pairs).

Data: ``{data_dir}/openmoji/openmoji.jsonl`` and ``images/{hexcode}.png``
(72x72 RGBA, composited on white). Split: an emoji is in test when the hash
of its hexcode falls below ``test_fraction`` (``mmzoo.data.splits``), so the
split is the same on every machine and never depends on file order. The text
tokenizer is fitted on the train split only.
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from mmzoo import _validation as check
from mmzoo.data import paths, splits
from mmzoo.data.augment import image_augmentation
from mmzoo.data.balance import class_weights
from mmzoo.data.columns import ImageColumn, LabelColumn, TextColumn
from mmzoo.data.manifest import from_jsonl
from mmzoo.data.pipeline import make_dataset
from mmzoo.data.tokenizers import VocabTokenizer

GROUPS = (
    "activities",
    "animals-nature",
    "extras-openmoji",
    "extras-unicode",
    "flags",
    "food-drink",
    "objects",
    "people-body",
    "smileys-emotion",
    "symbols",
    "travel-places",
)
IMAGE_SHAPE = (72, 72, 3)
TEXT_FIELDS = ("annotation", "tags")


@dataclasses.dataclass
class DatasetInfo:
    """What a model needs to know about a loaded task.

    Attributes:
        class_names: Class names in label order (empty for retrieval).
        tokenizer: The fitted text tokenizer (save it next to the model).
        vocabulary_size: ``tokenizer.vocabulary_size``.
        sequence_length: Length of the text ids.
        image_shape: Shape of the images.
        num_train: Examples in the train split.
        num_test: Examples in the test split.
        class_weights: ``{class: weight}`` from the train split (or ``None``).
    """

    class_names: tuple
    tokenizer: object
    vocabulary_size: int
    sequence_length: int
    image_shape: tuple
    num_train: int
    num_test: int
    class_weights: dict | None = None


def openmoji_manifests(data_dir=None, test_fraction=0.2):
    """The OpenMoji manifest split into train and test by hexcode hash.

    Each row gets an ``image`` column (``images/{hexcode}.png``).

    Args:
        data_dir: The shared data folder (see ``resolve_data_dir``).
        test_fraction: Expected share of the test split; ``0`` puts every
            emoji in train (and an empty test manifest).

    Returns:
        ``{"train": Manifest, "test": Manifest}``.

    Raises:
        FileNotFoundError: If the OpenMoji files are missing.

    Example:

    >>> manifests = openmoji_manifests()  # the data folder from resolve_data_dir()
    >>> len(manifests["train"]) + len(manifests["test"])
    2073
    """
    root = paths.require_path(paths.resolve_data_dir(data_dir), "openmoji")
    manifest = from_jsonl(paths.require_path(root, "openmoji.jsonl"), base_dir=root)
    for i, record in enumerate(manifest.records):
        record["image"] = os.path.join("images", f"{manifest.value(i, 'hexcode')}.png")
    if test_fraction == 0:  # everything to train (e.g. to fit a final model, or to split it yourself)
        return {"train": manifest, "test": manifest.subset([])}
    positions = splits.hash_split([r["hexcode"] for r in manifest.records], test_fraction)
    return {split: manifest.subset(positions[split]) for split in ("train", "test")}


def _texts(manifest, fields):
    return [" ".join(str(r.get(f) or "") for f in fields) for r in manifest.records]


def _check_common(batch_size, sequence_length, image_shape, text_fields):
    check.positive_int("batch_size", batch_size)
    check.positive_int("sequence_length", sequence_length)
    check.shape("image_shape", image_shape, 3)
    unknown = [f for f in text_fields if f not in ("annotation", "tags", "openmoji_tags", "subgroups")]
    if not text_fields or unknown:
        raise ValueError(
            "`text_fields` must be a non-empty list of 'annotation', 'tags', 'openmoji_tags', 'subgroups'. "
            f"Received: text_fields={text_fields!r}"
        )


def emoji_groups(
    data_dir=None,
    batch_size=32,
    sequence_length=32,
    text_fields=TEXT_FIELDS,
    image_shape=IMAGE_SHAPE,
    vocabulary_size=4000,
    tokenizer=None,
    shuffle=True,
    seed=0,
    cache=True,
    drop_remainder=False,
    augment=False,
    rebalance=False,
    test_fraction=0.2,
    on_error="raise",
    with_info=False,
):
    """OpenMoji image + text -> emoji group (11 classes).

    Args:
        data_dir: The shared data folder (argument, ``$MMZOO_DATA``, or
            ``../shared/data``).
        batch_size: Examples per batch.
        sequence_length: Text ids per example.
        text_fields: Fields joined into the text input (default
            ``annotation`` and ``tags``).
        image_shape: Image shape (72x72 is native; 1 or 3 channels on white).
        vocabulary_size: Vocabulary size limit of the fitted tokenizer
            (what it leaves out is logged).
        tokenizer: A tokenizer to use instead of fitting one on train.
        shuffle: Shuffle the train split every epoch.
        seed: Shuffle/augmentation seed (``None``: nondeterministic).
        cache: Cache decoded examples in memory.
        drop_remainder: Drop partial batches.
        augment: Apply image flips/colour jitter to the train split.
        rebalance: Sample train classes uniformly.
        test_fraction: Share of emojis in the test split; ``0`` puts every
            emoji in train and returns ``None`` for the test dataset.
        on_error: ``"raise"`` or ``"skip"`` for unreadable rows.
        with_info: Also return a ``DatasetInfo``.

    Returns:
        ``(train_ds, test_ds)`` (plus ``info`` with ``with_info=True``),
        yielding ``({"image": float32 (B, 72, 72, 3) in [0, 1], "text": int32
        (B, sequence_length)}, label int32 (B,))`` with labels indexing
        ``GROUPS``.

    Raises:
        ValueError: If an argument is invalid.
        FileNotFoundError: If the data is missing.

    Example:

    >>> train_ds, test_ds, info = emoji_groups(with_info=True)
    >>> info.class_names[:2], info.num_train + info.num_test
    (('activities', 'animals-nature'), 2073)
    >>> train_ds.element_spec[0]["text"].shape
    TensorShape([None, 32])
    """
    _check_common(batch_size, sequence_length, image_shape, text_fields)
    manifests = openmoji_manifests(data_dir, test_fraction)
    if tokenizer is None:
        tokenizer = VocabTokenizer.fit(
            _texts(manifests["train"], text_fields), sequence_length, vocabulary_size=vocabulary_size
        )
    features = {"image": ImageColumn("image", image_shape), "text": TextColumn(list(text_fields), tokenizer)}
    label = LabelColumn("group", classes=GROUPS)
    out = []
    for split in ("train", "test"):
        train = split == "train"
        if not train and len(manifests[split]) == 0:  # test_fraction=0
            out.append(None)
            continue
        out.append(
            make_dataset(
                manifests[split],
                features,
                label,
                batch_size=batch_size,
                shuffle=shuffle and train,
                seed=seed,
                cache=cache,
                drop_remainder=drop_remainder,
                augment={"image": image_augmentation(brightness=0.1, contrast=0.1)} if augment and train else None,
                rebalance=rebalance and train,
                on_error=on_error,
            )
        )
    if not with_info:
        return tuple(out)
    info = DatasetInfo(
        class_names=GROUPS,
        tokenizer=tokenizer,
        vocabulary_size=tokenizer.vocabulary_size,
        sequence_length=tokenizer.sequence_length,
        image_shape=tuple(image_shape),
        num_train=len(manifests["train"]),
        num_test=len(manifests["test"]),
        class_weights=class_weights(label.indices(manifests["train"]), len(GROUPS)),
    )
    return (*out, info)


def emoji_retrieval(
    data_dir=None,
    batch_size=32,
    sequence_length=16,
    image_shape=IMAGE_SHAPE,
    vocabulary_size=4000,
    tokenizer=None,
    shuffle=True,
    seed=0,
    cache=True,
    drop_remainder=False,
    test_fraction=0.2,
    on_error="raise",
    with_info=False,
):
    """OpenMoji image <-> ``annotation`` pairs for image-text retrieval.

    Each batch is ``B`` matching pairs: image ``i`` matches text ``i``. The
    label of a batch is ``range(B)``, the index of each example's match, so
    a dual encoder that outputs ``(B, B)`` image-text similarity logits
    trains with sparse categorical cross-entropy (in-batch contrastive loss)
    and recall@k is computed from the same logits.

    Args:
        data_dir: The shared data folder.
        batch_size: Pairs per batch.
        sequence_length: Text ids per annotation.
        image_shape: Image shape.
        vocabulary_size: Vocabulary size limit (what it leaves out is logged).
        tokenizer: A tokenizer to use instead of fitting one on train.
        shuffle: Shuffle the train split every epoch.
        seed: Shuffle seed.
        cache: Cache decoded examples.
        drop_remainder: Drop partial batches.
        test_fraction: Share of emojis in the test split; ``0`` puts every
            emoji in train and returns ``None`` for the test dataset.
        on_error: ``"raise"`` or ``"skip"``.
        with_info: Also return a ``DatasetInfo``.

    Returns:
        ``(train_ds, test_ds)`` (plus ``info``) yielding ``({"image": float32
        (B, 72, 72, 3), "text": int32 (B, sequence_length)}, int32 range(B))``.

    Raises:
        ValueError: If an argument is invalid.
        FileNotFoundError: If the data is missing.

    Example:

    >>> train_ds, test_ds = emoji_retrieval(batch_size=64)
    >>> train_ds.element_spec[0]["image"].shape
    TensorShape([None, 72, 72, 3])
    """
    _check_common(batch_size, sequence_length, image_shape, ("annotation",))
    manifests = openmoji_manifests(data_dir, test_fraction)
    if tokenizer is None:
        tokenizer = VocabTokenizer.fit(
            _texts(manifests["train"], ("annotation",)), sequence_length, vocabulary_size=vocabulary_size
        )
    features = {"image": ImageColumn("image", image_shape), "text": TextColumn("annotation", tokenizer)}
    out = []
    for split in ("train", "test"):
        if split == "test" and len(manifests[split]) == 0:  # test_fraction=0
            out.append(None)
            continue
        ds = make_dataset(
            manifests[split],
            features,
            batch_size=batch_size,
            shuffle=shuffle and split == "train",
            seed=seed,
            cache=cache,
            drop_remainder=drop_remainder,
            on_error=on_error,
        )
        out.append(ds.map(_with_match_labels))
    if not with_info:
        return tuple(out)
    info = DatasetInfo(
        class_names=(),
        tokenizer=tokenizer,
        vocabulary_size=tokenizer.vocabulary_size,
        sequence_length=tokenizer.sequence_length,
        image_shape=tuple(image_shape),
        num_train=len(manifests["train"]),
        num_test=len(manifests["test"]),
    )
    return (*out, info)


def _with_match_labels(inputs):
    return inputs, tf.range(tf.shape(inputs["text"])[0], dtype=tf.int32)
