"""``Index``: embeddings with their ids and paths, searched exactly by a matrix product.

The store behind image-text search (``mmzoo.retrieval.Index``): add the
embeddings of a collection (e.g. ``embed_image`` of an exported dual
encoder), save it to a folder (local or any ``tf.io.gfile`` file system),
load it back and rank the stored items for a query embedding by cosine
similarity (or dot product). Search is exact: one matrix product and a
partial sort, with ties broken by insertion order so results are stable.
"""

from __future__ import annotations

import io
import json
import posixpath

import numpy as np
import tensorflow as tf

METRICS = ("cosine", "dot")
INDEX_FILE = "index.json"
EMBEDDINGS_FILE = "embeddings.npy"
_FORMAT = "mmzoo-index-1"


class Index:
    """Exact nearest-neighbour search over stored embeddings.

    Args:
        metric: ``"cosine"`` (default: embeddings and queries are
            L2-normalised) or ``"dot"``.
        metadata: A JSON-able dict saved with the index (``mmzoo index``
            keeps the model folder there, so ``mmzoo search`` can embed
            queries with the same model).

    Example:

    >>> import numpy as np
    >>> from mmzoo.retrieval import Index
    >>> index = Index()
    >>> index.add(np.eye(3, 4, dtype="float32"), ids=["a", "b", "c"], paths=["a.png", "b.png", "c.png"])
    >>> [hit["id"] for hit in index.search(np.array([0.1, 1.0, 0.0, 0.0]), top_k=2)]
    ['b', 'a']
    >>> len(index)
    3
    """

    def __init__(self, metric="cosine", metadata=None):
        if metric not in METRICS:
            raise ValueError(f"`metric` must be one of {', '.join(METRICS)}. Received: metric={metric!r}")
        self.metric = metric
        self.metadata = dict(metadata or {})
        self._embeddings = None
        self.ids, self.paths = [], []

    def __len__(self):
        return len(self.ids)

    @property
    def dim(self):
        """The embedding width (``None`` while the index is empty)."""
        return None if self._embeddings is None else self._embeddings.shape[1]

    def add(self, embeddings, ids, paths=None):
        """Adds embeddings with their ids (unique strings) and optional paths.

        Args:
            embeddings: ``(n, dim)`` numbers, finite.
            ids: ``n`` strings, none already in the index.
            paths: ``n`` strings (e.g. the files embedded), or ``None``.

        Raises:
            ValueError: For a shape, count or width mismatch, non-finite
                values, a zero vector under ``"cosine"``, or a repeated id.
        """
        vectors = self._vectors("embeddings", embeddings)
        ids = [str(i) for i in ids]
        paths = [""] * len(ids) if paths is None else [str(p) for p in paths]
        if not len(ids) == len(paths) == len(vectors):
            raise ValueError(f"`embeddings`, `ids` and `paths` must have one entry per item. Received: "
                             f"{len(vectors)} embeddings, {len(ids)} ids, {len(paths)} paths")
        seen = set(self.ids)
        repeated = sorted({i for i in ids if i in seen} | {i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"`ids` must be unique in the index; repeated: {repeated[:5]}")
        self._embeddings = vectors if self._embeddings is None else np.concatenate([self._embeddings, vectors])
        self.ids += ids
        self.paths += paths

    def search(self, queries, top_k=10):
        """Ranks the stored items for each query.

        Args:
            queries: One query ``(dim,)`` or several ``(m, dim)``.
            top_k: How many results per query (at most the index's size).

        Returns:
            For one query, a list of ``{"id", "path", "score"}`` dicts, best
            first; for several, a list of such lists, in query order.

        Raises:
            ValueError: If the index is empty, ``top_k`` is not a positive
                integer, or a query has the wrong width or is not finite.
        """
        if not len(self):
            raise ValueError("The index is empty: add embeddings before searching.")
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k <= 0:
            raise ValueError(f"`top_k` must be a positive integer. Received: top_k={top_k!r}")
        single = np.ndim(queries) == 1
        vectors = self._vectors("queries", np.atleast_2d(np.asarray(queries, dtype=np.float32)))
        scores = vectors @ self._embeddings.T
        k = min(int(top_k), len(self))
        # The k best by score, then (stable) by insertion order among equal scores.
        candidates = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < len(self) else np.tile(
            np.arange(len(self)), (len(vectors), 1))
        results = []
        for row, cand in zip(scores, candidates):
            order = cand[np.lexsort((cand, -row[cand]))]
            results.append([{"id": self.ids[i], "path": self.paths[i], "score": float(row[i])} for i in order])
        return results[0] if single else results

    def save(self, folder):
        """Writes the index to ``folder`` (created; ``index.json`` is written last).

        Args:
            folder: A local or ``tf.io.gfile`` folder (``gs://...``).

        Returns:
            ``folder``.
        """
        if not len(self):
            raise ValueError("The index is empty: nothing to save.")
        folder = str(folder)
        tf.io.gfile.makedirs(folder)
        buffer = io.BytesIO()
        np.save(buffer, self._embeddings)
        with tf.io.gfile.GFile(posixpath.join(folder, EMBEDDINGS_FILE), "wb") as f:
            f.write(buffer.getvalue())
        meta = {"format": _FORMAT, "metric": self.metric, "count": len(self), "dim": self.dim,
                "metadata": self.metadata, "ids": self.ids, "paths": self.paths}
        with tf.io.gfile.GFile(posixpath.join(folder, INDEX_FILE), "w") as f:
            json.dump(meta, f)
        return folder

    @classmethod
    def load(cls, folder):
        """Reads an index written by ``save``.

        Raises:
            FileNotFoundError: If ``folder`` holds no index.
            ValueError: If its files disagree (a damaged or foreign folder).
        """
        folder = str(folder)
        meta_path = posixpath.join(folder, INDEX_FILE)
        if not tf.io.gfile.exists(meta_path):
            raise FileNotFoundError(f"{folder}: no mmzoo index here ({INDEX_FILE} missing); build one with "
                                    "mmzoo.retrieval.Index(...).save(folder) or `mmzoo index`.")
        with tf.io.gfile.GFile(meta_path) as f:
            meta = json.load(f)
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{meta_path}: not an mmzoo index (format {meta.get('format')!r}, expected {_FORMAT!r})")
        with tf.io.gfile.GFile(posixpath.join(folder, EMBEDDINGS_FILE), "rb") as f:
            embeddings = np.load(io.BytesIO(f.read()), allow_pickle=False)
        if embeddings.shape != (meta["count"], meta["dim"]) or len(meta["ids"]) != meta["count"]:
            raise ValueError(f"{folder}: {EMBEDDINGS_FILE} holds {embeddings.shape} but {INDEX_FILE} describes "
                             f"{meta['count']} items of width {meta['dim']}; the index is damaged, rebuild it.")
        index = cls(meta["metric"], meta.get("metadata"))
        index._embeddings = embeddings.astype(np.float32)
        index.ids, index.paths = list(meta["ids"]), list(meta["paths"])
        return index

    def _vectors(self, name, values):
        vectors = np.asarray(values, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] == 0:
            raise ValueError(f"`{name}` must be a non-empty (n, dim) array. Received shape {vectors.shape}")
        if self.dim is not None and vectors.shape[1] != self.dim:
            raise ValueError(f"`{name}` must have width {self.dim} (the index's). Received shape {vectors.shape}")
        bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
        if bad.size:
            raise ValueError(f"`{name}` has non-finite values (NaN or inf) in rows {bad[:5].tolist()}")
        if self.metric == "cosine":
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            zero = np.flatnonzero(norms[:, 0] == 0)
            if zero.size:
                raise ValueError(f"`{name}` has all-zero rows {zero[:5].tolist()}: no direction to compare by "
                                 "cosine")
            vectors = vectors / norms
        return vectors
