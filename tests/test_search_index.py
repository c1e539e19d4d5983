"""mmzoo.retrieval.Index: exact search, stable ties, save/load round trips (local and ram://), named errors."""

import uuid

import numpy as np
import pytest

from mmzoo.retrieval import Index


def _index(n=200, dim=16, seed=0, metric="cosine"):
    rng = np.random.default_rng(seed)
    index = Index(metric)
    vectors = rng.normal(size=(n, dim)).astype("float32")
    index.add(vectors, ids=[f"item{i}" for i in range(n)], paths=[f"images/{i}.png" for i in range(n)])
    return index, vectors


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_every_stored_item_finds_itself_first_and_scores_match_a_brute_force(metric):
    index, vectors = _index(metric=metric)
    hits = index.search(vectors, top_k=5)
    assert [h[0]["id"] for h in hits] == [f"item{i}" for i in range(len(vectors))] or metric == "dot"
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    stored = unit if metric == "cosine" else vectors
    queries = unit if metric == "cosine" else vectors
    brute = queries[7] @ stored.T
    best = np.argsort(-brute, kind="stable")[:5]
    assert [h["id"] for h in hits[7]] == [f"item{i}" for i in best]
    np.testing.assert_allclose([h["score"] for h in hits[7]], brute[best], rtol=1e-5)
    assert hits[7][0]["path"] == f"images/{best[0]}.png"


def test_ties_are_broken_by_insertion_order_and_top_k_is_capped():
    index = Index()
    index.add(np.ones((4, 3), "float32"), ids=["d", "c", "b", "a"])
    assert [h["id"] for h in index.search(np.ones(3), top_k=3)] == ["d", "c", "b"]
    assert len(index.search(np.ones(3), top_k=50)) == 4


@pytest.mark.parametrize("where", ["local", "ram"])
def test_save_and_load_give_identical_results(tmp_path, where):
    index, vectors = _index()
    folder = str(tmp_path / "index") if where == "local" else f"ram://{uuid.uuid4().hex}/index"
    index.save(folder)
    loaded = Index.load(folder)
    assert len(loaded) == len(index) and loaded.metric == index.metric and loaded.dim == 16
    assert loaded.search(vectors[:20], top_k=10) == index.search(vectors[:20], top_k=10)
    more = np.random.default_rng(1).normal(size=(3, 16)).astype("float32")
    loaded.add(more, ids=["new0", "new1", "new2"])
    assert loaded.search(more[1], top_k=1)[0]["id"] == "new1"


def test_bad_input_is_refused_by_name(tmp_path):
    index, _ = _index(n=5, dim=4)
    with pytest.raises(ValueError, match="width 4"):
        index.search(np.ones(3))
    with pytest.raises(ValueError, match="top_k"):
        index.search(np.ones(4), top_k=0)
    with pytest.raises(ValueError, match="non-finite"):
        index.search(np.array([1.0, np.nan, 0, 0]))
    with pytest.raises(ValueError, match="repeated"):
        index.add(np.ones((1, 4)), ids=["item0"])
    with pytest.raises(ValueError, match="all-zero rows"):
        index.add(np.zeros((1, 4)), ids=["zero"])
    with pytest.raises(ValueError, match="one entry per item"):
        index.add(np.ones((2, 4)), ids=["x"])
    with pytest.raises(ValueError, match="empty"):
        Index().search(np.ones(4))
    with pytest.raises(ValueError, match="metric"):
        Index("l2")
    with pytest.raises(FileNotFoundError, match="no mmzoo index here"):
        Index.load(str(tmp_path / "missing"))
    index.save(str(tmp_path / "damaged"))
    np.save(tmp_path / "damaged" / "embeddings.npy", np.ones((2, 4), "float32"))
    with pytest.raises(ValueError, match="damaged"):
        Index.load(str(tmp_path / "damaged"))
