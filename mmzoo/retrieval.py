"""Image-text retrieval: a dual encoder, its losses, ``recall_at_k`` and the search ``Index``.

``keras_hub_dual_encoder`` (from ``mmzoo.retrieval_keras_hub``) builds the
dual encoder from a pretrained KerasHub CLIP or SigLIP preset.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from mmzoo import _validation as check
from mmzoo.retrieval_keras_hub import keras_hub_dual_encoder as keras_hub_dual_encoder  # re-exported
from mmzoo.search_index import Index as Index  # re-exported: mmzoo.retrieval.Index


def contrastive_loss(image_embeddings, text_embeddings, temperature=0.05):
    """Symmetric in-batch contrastive loss (CLIP's InfoNCE).

    Row ``i`` of both inputs is a matching pair; every other row of the batch
    is a negative. The loss is the mean of the image->text and text->image
    cross-entropies over the ``(batch, batch)`` similarity matrix / temperature.

    Args:
        image_embeddings: ``(batch, dim)`` L2-normalised embeddings.
        text_embeddings: ``(batch, dim)`` L2-normalised embeddings.
        temperature: Softmax temperature (> 0).

    Returns:
        A float32 scalar.
    """
    image_embeddings = ops.cast(image_embeddings, "float32")
    text_embeddings = ops.cast(text_embeddings, "float32")
    logits = ops.matmul(image_embeddings, ops.transpose(text_embeddings)) / temperature
    labels = ops.arange(ops.shape(logits)[0])
    i2t = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    t2i = keras.losses.sparse_categorical_crossentropy(labels, ops.transpose(logits), from_logits=True)
    return (ops.mean(i2t) + ops.mean(t2i)) / 2


def triplet_margin_loss(image_embeddings, text_embeddings, margin=0.2):
    """Triplet margin loss with the image as anchor, over all in-batch negatives.

    For anchor image ``i``, positive text ``i`` and every other text ``j`` of
    the batch as a negative, the triplet costs
    ``max(0, margin - sim(i, t_i) + sim(i, t_j))``; the loss is the mean over
    all ``B * (B - 1)`` triplets. Averaging over every negative (rather than
    taking only the hardest, as VSE++ does) keeps training from collapsing to
    a constant embedding early on, which the hardest-negative form does on
    small batches from random initialisation.

    Args:
        image_embeddings: ``(batch, dim)`` L2-normalised embeddings (anchors).
        text_embeddings: ``(batch, dim)`` L2-normalised embeddings.
        margin: Required gap between positive and negative similarity.

    Returns:
        A float32 scalar.
    """
    image_embeddings = ops.cast(image_embeddings, "float32")
    text_embeddings = ops.cast(text_embeddings, "float32")
    sims = ops.matmul(image_embeddings, ops.transpose(text_embeddings))
    batch = ops.shape(sims)[0]
    positive = ops.expand_dims(ops.diagonal(sims), 1)
    off_diagonal = 1.0 - ops.eye(batch, dtype="float32")
    hinges = ops.relu(margin - positive + sims) * off_diagonal
    pairs = ops.maximum(ops.sum(off_diagonal), 1.0)
    return ops.sum(hinges) / pairs


@keras.saving.register_keras_serializable(package="mmzoo")
class DualEncoder(keras.Model):
    """Two encoders mapping images and texts into one L2-normalised space.

    Train it with ``fit`` on a dataset of input dicts ``{"image": ...,
    "text": ...}`` whose rows are matching pairs (no labels needed): the loss
    is computed from the embeddings. Use ``image_encoder`` to index images and
    ``text_encoder`` to embed queries (or the reverse).

    Args:
        image_encoder: A ``keras.Model`` image -> ``(batch, dim)`` unit vectors.
        text_encoder: A ``keras.Model`` token ids -> ``(batch, dim)`` unit vectors.
        loss: ``"contrastive"`` (symmetric InfoNCE) or ``"triplet"``.
        temperature: Temperature of the contrastive loss.
        margin: Margin of the triplet loss.
        **kwargs: Standard ``keras.Model`` arguments (``name``).

    Example:

    >>> import numpy as np
    >>> import mmzoo
    >>> model = mmzoo.build("image_text_retrieval")
    >>> # model.fit(pairs_ds, epochs=5)  with pairs_ds from mmzoo.datasets.emoji_retrieval()
    >>> images = np.random.default_rng(0).random((4, 72, 72, 3), dtype="float32")
    >>> texts = np.arange(1, 65, dtype="int32").reshape(4, 16)
    >>> scores = model.image_encoder.predict(images, verbose=0) @ model.text_encoder.predict(texts, verbose=0).T
    >>> scores.shape
    (4, 4)
    """

    def __init__(self, image_encoder, text_encoder, loss="contrastive", temperature=0.05, margin=0.2, **kwargs):
        super().__init__(**kwargs)
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.loss_kind = check.choice("loss", loss, {"contrastive", "triplet"})
        if not temperature > 0:
            raise ValueError(f"`temperature` must be > 0. Received: temperature={temperature!r}")
        if not margin > 0:
            raise ValueError(f"`margin` must be > 0. Received: margin={margin!r}")
        self.temperature = float(temperature)
        self.margin = float(margin)
        # Both encoders are built functional models, so this model is too.
        self.built = image_encoder.built and text_encoder.built

    def call(self, inputs, training=None):
        return {
            "image": self.image_encoder(inputs["image"], training=training),
            "text": self.text_encoder(inputs["text"], training=training),
        }

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if self.loss_kind == "contrastive":
            loss = contrastive_loss(y_pred["image"], y_pred["text"], self.temperature)
        else:
            loss = triplet_margin_loss(y_pred["image"], y_pred["text"], self.margin)
        for extra in self.losses:
            loss = loss + ops.cast(extra, "float32")
        return loss

    def get_config(self):
        config = super().get_config()
        config.update(
            image_encoder=keras.saving.serialize_keras_object(self.image_encoder),
            text_encoder=keras.saving.serialize_keras_object(self.text_encoder),
            loss=self.loss_kind,
            temperature=self.temperature,
            margin=self.margin,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["image_encoder"] = keras.saving.deserialize_keras_object(config["image_encoder"])
        config["text_encoder"] = keras.saving.deserialize_keras_object(config["text_encoder"])
        return cls(**config)


def recall_at_k(image_embeddings, text_embeddings, ks=(1, 5, 10), ties="pessimistic"):
    """Retrieval recall@k in both directions for aligned embedding rows.

    Row ``i`` of each array is a matching pair. ``image_to_text@k`` is the
    fraction of images whose own text is among the ``k`` most similar texts;
    ``text_to_image@k`` the reverse. Similarity is the dot product (cosine for
    unit vectors).

    Ties count against the model by default: an item scoring exactly as high
    as the true match ranks ahead of it, so a collapsed encoder (every
    embedding equal) scores 0 at every ``k < n`` instead of 1.

    Args:
        image_embeddings: ``(n, dim)`` array.
        text_embeddings: ``(n, dim)`` array.
        ks: The cut-offs.
        ties: ``"pessimistic"`` (default: tied items rank ahead of the match)
            or ``"expected"`` (the expected recall when ties are broken at
            random: a constant embedding scores ``k / n``).

    Returns:
        A dict ``{"image_to_text@k": float, "text_to_image@k": float, ...}``.

    Raises:
        ValueError: If the arrays are not 2-D with the same shape, a ``k``
            is not a positive integer, or ``ties`` is unknown.

    Example:

    >>> recall_at_k(np.eye(3), np.eye(3), ks=(1,))
    {'image_to_text@1': 1.0, 'text_to_image@1': 1.0}
    """
    image_embeddings = np.asarray(image_embeddings, np.float32)
    text_embeddings = np.asarray(text_embeddings, np.float32)
    if image_embeddings.ndim != 2 or image_embeddings.shape != text_embeddings.shape:
        raise ValueError(
            "`image_embeddings` and `text_embeddings` must be 2-D arrays of the same shape. "
            f"Received: {image_embeddings.shape} and {text_embeddings.shape}"
        )
    ks = check.positive_ints("ks", ks)
    check.choice("ties", ties, {"pessimistic", "expected"})
    sims = image_embeddings @ text_embeddings.T
    diag = np.diag(sims)
    out = {}
    directions = {"image_to_text": (sims, diag[:, None], 1), "text_to_image": (sims, diag[None, :], 0)}
    for k in ks:
        for direction, (scores, own, axis) in directions.items():
            higher = (scores > own).sum(axis=axis)
            tied = (scores == own).sum(axis=axis) - 1  # the match itself is not a tie
            if ties == "pessimistic":
                hit = (higher + tied < k).astype(np.float64)
            else:  # P(rank < k) with the match at a uniform position among its ties
                hit = np.clip((k - higher) / (tied + 1), 0.0, 1.0)
            out[f"{direction}@{k}"] = float(np.mean(hit))
    return out


def retrieval_report(image_embeddings, text_embeddings, ks=(1, 5, 10)):
    """Recall@k both ways, median rank and mean reciprocal rank of aligned embedding rows, ties pessimistic.

    The rank of a true match is 1 + the number of items scoring higher or
    equal (ties count against the model, as in ``recall_at_k``).

    Args:
        image_embeddings: ``(n, dim)`` array; row ``i`` matches text row ``i``.
        text_embeddings: ``(n, dim)`` array.
        ks: The recall cut-offs.

    Returns:
        A dict: ``recall_at_k``'s keys, plus ``{direction}_median_rank`` and
        ``{direction}_mrr`` for ``image_to_text`` and ``text_to_image``.

    Raises:
        ValueError: As ``recall_at_k``.

    Example:

    >>> report = retrieval_report(np.eye(3), np.eye(3)[[0, 2, 1]], ks=(1,))
    >>> report["image_to_text@1"], report["image_to_text_median_rank"], round(report["image_to_text_mrr"], 3)
    (0.3333333333333333, 3.0, 0.556)
    """
    out = recall_at_k(image_embeddings, text_embeddings, ks=ks)
    sims = np.asarray(image_embeddings, np.float32) @ np.asarray(text_embeddings, np.float32).T
    diag = np.diag(sims)
    for direction, (own, axis) in {"image_to_text": (diag[:, None], 1), "text_to_image": (diag[None, :], 0)}.items():
        ranks = (sims >= own).sum(axis=axis)  # the match itself counts once: rank 1 when nothing ties or beats it
        out[f"{direction}_median_rank"] = float(np.median(ranks))
        out[f"{direction}_mrr"] = float(np.mean(1.0 / ranks))
    return out

