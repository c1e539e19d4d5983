"""OpenMoji image <-> text retrieval: R@1/5/10 both ways per text tower and loss, 3 seeds, and search speed.

Prints, in one run, on the shared hash split of ``../shared/data/openmoji``
(``mmzoo.datasets.emoji.openmoji_manifests``: 1,676 training emojis, 397
held-out ones), for each variant: R@1/5/10 image->text and text->image with
ties counted against the model (mean and min-max over the seeds), and the
training seconds. The held-out queries are the annotations (``"flag:
Peru"``); the held-out emojis are never seen in training. Variants:

* ``vocab``: the zoo's ``image_text_retrieval`` (word ``VocabTokenizer``,
  contrastive loss, temperature 0.05): the default;
* ``vocab T=0.1``: the same at temperature 0.1;
* ``vocab triplet``: the triplet margin loss;
* ``wordpiece``: a ``WordPieceTokenizer`` (3,000 subwords) fitted on train;
* ``vocab +positives``: each training step pairs the image with one of its
  texts drawn at random (annotation, tags, OpenMoji tags, subgroup): a
  multi-positive contrastive loss without in-batch false negatives;
* ``char n-grams +positives``: hashed words and character 3/4-grams
  (fastText-style, 20,000 buckets, no unknown token) with the same positives.

Then the exact search speed of ``mmzoo.retrieval.Index`` over 10k and 100k
stored embeddings (``benchmarks/index_search.py``). Target (issue 14):
R@10 >= 0.45 both ways (mean of 3 seeds); a query over 100k under 10 ms.

Usage::

    python benchmarks/retrieval.py [--seeds 3] [--epochs 15] [--variants vocab,wordpiece]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import mmzoo
from mmzoo.data import ImageColumn, VocabTokenizer, WordPieceTokenizer
from mmzoo.datasets.emoji import openmoji_manifests
from mmzoo.retrieval import recall_at_k

sys.path.insert(0, os.path.dirname(__file__))
import index_search

BATCH = 64
SEQUENCE_LENGTH = 16
NGRAM_LENGTH = 64
NGRAM_BUCKETS = 20_000


class CharNgrams:
    """Hashed words + character 3/4-grams of each word (with ``<`` ``>`` boundaries) -> ids in [1, buckets)."""

    vocabulary_size = NGRAM_BUCKETS

    def __call__(self, texts):
        words = tf.strings.split(tf.strings.regex_replace(tf.strings.lower(texts), r"[^\p{L}\p{N}]+", " "))
        chars = tf.strings.unicode_split(tf.strings.join(["<", words, ">"]), "UTF-8")
        grams = [words] + [tf.strings.ngrams(chars, n, separator="").merge_dims(1, 2) for n in (3, 4)]
        ids = tf.strings.to_hash_bucket_fast(tf.concat(grams, axis=1), NGRAM_BUCKETS - 1) + 1
        return tf.cast(ids, tf.int32).to_tensor(0, shape=[None, NGRAM_LENGTH])


VARIANTS = {
    "vocab": {"tokenizer": "vocab"},
    "vocab T=0.1": {"tokenizer": "vocab", "temperature": 0.1},
    "vocab triplet": {"tokenizer": "vocab", "loss": "triplet"},
    "wordpiece": {"tokenizer": "wordpiece"},
    "vocab +positives": {"tokenizer": "vocab", "positives": True},
    "char n-grams +positives": {"tokenizer": "ngrams", "positives": True},
}


def _texts(record, positives):
    texts = [record["annotation"]]
    if positives:
        texts += [str(record.get(f) or "").replace(",", " ").replace("-", " ")
                  for f in ("tags", "openmoji_tags", "subgroups")]
    return [t for t in texts if t.strip()]


def _images(manifest):
    column = ImageColumn("image", (72, 72, 3))
    return np.stack([column.decode(column.python_value(manifest, i)).numpy() for i in range(len(manifest))])


def _tokenizer(kind, texts):
    if kind == "vocab":
        return VocabTokenizer.fit(texts, SEQUENCE_LENGTH, vocabulary_size=5000)
    if kind == "wordpiece":
        return WordPieceTokenizer.fit(texts, SEQUENCE_LENGTH, vocabulary_size=3000)
    return CharNgrams()


def run(variant, data, seed, epochs):
    train_texts = [_texts(r, variant.get("positives")) for r in data["train"].records]
    tokenizer = _tokenizer(variant["tokenizer"], [t for texts in train_texts for t in texts])
    width = max(len(t) for t in train_texts)
    length = NGRAM_LENGTH if variant["tokenizer"] == "ngrams" else SEQUENCE_LENGTH
    ids = np.zeros((len(train_texts), width, length), np.int32)
    valid = np.zeros((len(train_texts), width), np.float32)
    for i, texts in enumerate(train_texts):
        ids[i, :len(texts)] = tokenizer(tf.constant(texts)).numpy()
        valid[i, :len(texts)] = 1.0
    keras.utils.set_random_seed(seed)
    model = mmzoo.build("image_text_retrieval", sequence_length=length, vocabulary_size=tokenizer.vocabulary_size,
                        loss=variant.get("loss", "contrastive"), temperature=variant.get("temperature", 0.05))

    def pick(image, texts, mask, key):  # one of the example's texts, uniformly
        choice = tf.random.stateless_categorical(tf.math.log(mask)[None], 1, key)[0, 0]
        return {"image": image, "text": texts[choice]}

    keys = tf.data.Dataset.random(seed=seed).batch(2)
    ds = tf.data.Dataset.zip((tf.data.Dataset.from_tensor_slices((data["train_images"], ids, valid)), keys))
    ds = ds.shuffle(4096, seed=seed).map(lambda example, key: pick(*example, key))
    ds = ds.batch(BATCH, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    start = time.perf_counter()
    model.fit(ds, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    queries = tokenizer(tf.constant([r["annotation"] for r in data["test"].records])).numpy()
    images = model.image_encoder.predict(data["test_images"], batch_size=256, verbose=0)
    texts = model.text_encoder.predict(queries, batch_size=256, verbose=0)
    return recall_at_k(images, texts), seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names of VARIANTS")
    parser.add_argument("--no-index", action="store_true", help="skip the search-speed part")
    args = parser.parse_args()
    names = [v for v in args.variants.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {unknown}; choose from {list(VARIANTS)}")
    manifests = openmoji_manifests()
    data = {**manifests, "train_images": _images(manifests["train"]), "test_images": _images(manifests["test"])}
    print(f"OpenMoji retrieval, shared hash split: {len(manifests['train'])} train / {len(manifests['test'])} "
          f"held-out emojis; {args.epochs} epochs, batch {BATCH}, seeds 0..{args.seeds - 1}; ties pessimistic; "
          f"{os.cpu_count()} cores")
    keys = [f"{d}@{k}" for d in ("image_to_text", "text_to_image") for k in (1, 5, 10)]
    print("| variant | " + " | ".join(k.replace("image_to_text", "i->t").replace("text_to_image", "t->i")
                                       for k in keys) + " | train s |")
    print("|" + " --- |" * (len(keys) + 2))
    for name in names:
        runs = [run(VARIANTS[name], data, seed, args.epochs) for seed in range(args.seeds)]
        cells = []
        for key in keys:
            values = [r[key] for r, _ in runs]
            cells.append(f"{np.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})")
        print(f"| {name} | " + " | ".join(cells) + f" | {np.mean([s for _, s in runs]):.0f} |", flush=True)
    if not args.no_index:
        sys.argv = [sys.argv[0]]
        index_search.main()


if __name__ == "__main__":
    main()
