import keras
import numpy as np
import pytest

from mmzoo import zoo
from mmzoo.retrieval import DualEncoder, contrastive_loss, recall_at_k, triplet_margin_loss


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_recall_at_k_known_values():
    emb = np.eye(4, dtype="float32")
    assert recall_at_k(emb, emb, ks=(1,)) == {"image_to_text@1": 1.0, "text_to_image@1": 1.0}
    shuffled = emb[[1, 0, 2, 3]]  # pairs 0 and 1 swapped: their match ties with two other texts at 0
    r = recall_at_k(emb, shuffled, ks=(1, 2, 4))
    assert r["image_to_text@1"] == 0.5 and r["image_to_text@2"] == 0.5 and r["image_to_text@4"] == 1.0
    graded = emb + 0.5 * emb[[1, 2, 3, 0]]  # every image's second-best text is the next one
    r = recall_at_k(emb, graded[[1, 0, 2, 3]], ks=(1, 2))
    assert r["image_to_text@1"] == 0.5 and r["image_to_text@2"] == 0.75
    with pytest.raises(ValueError, match="same shape"):
        recall_at_k(emb, emb[:3])
    with pytest.raises(ValueError, match="ks"):
        recall_at_k(emb, emb, ks=(0,))


def test_recall_at_k_counts_ties_against_the_model():
    # A collapsed encoder (every embedding equal) must not look perfect.
    n = 383
    constant = np.ones((n, 4), "float32")
    assert recall_at_k(constant, constant, ks=(1, 10)) == {
        "image_to_text@1": 0.0, "text_to_image@1": 0.0, "image_to_text@10": 0.0, "text_to_image@10": 0.0}
    expected = recall_at_k(constant, constant, ks=(1, 10), ties="expected")
    assert expected["image_to_text@10"] == pytest.approx(10 / n) and expected["text_to_image@1"] == pytest.approx(1 / n)
    assert recall_at_k(constant, constant, ks=(n,))["image_to_text@" + str(n)] == 1.0
    with pytest.raises(ValueError, match="ties"):
        recall_at_k(constant, constant, ties="optimistic")


def test_losses_prefer_aligned_pairs():
    rng = np.random.RandomState(0)
    a = _unit(rng.randn(8, 5).astype("float32"))
    aligned = _unit(a + 0.05 * rng.randn(8, 5).astype("float32"))
    shuffled = aligned[::-1].copy()
    assert float(contrastive_loss(a, aligned)) < float(contrastive_loss(a, shuffled))
    assert float(triplet_margin_loss(a, aligned)) < float(triplet_margin_loss(a, shuffled))
    eye = np.eye(8, dtype="float32")
    assert float(triplet_margin_loss(eye, eye, margin=0.5)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("loss", ["contrastive", "triplet"])
def test_dual_encoder_learns_real_pairs(loss, real_data):
    keras.utils.set_random_seed(0)
    model = zoo.build_tiny(
        "image_text_retrieval", loss=loss, image_filters=(8, 16), embedding_dim=16, text_dim=16, learning_rate=3e-3
    )
    x = real_data.inputs_for(model)  # 64 real OpenMoji image/annotation pairs
    before = recall_at_k(model.image_encoder(x["image"]), model.text_encoder(x["text"]))
    losses = model.fit(x, epochs=20, batch_size=32, verbose=0).history["loss"]
    after = recall_at_k(model.image_encoder(x["image"]), model.text_encoder(x["text"]))
    assert losses[-1] < losses[0]
    assert after["image_to_text@5"] > before["image_to_text@5"]
    assert isinstance(model, DualEncoder)


def test_dual_encoder_rejects_bad_arguments():
    model = zoo.build_tiny("image_text_retrieval")
    with pytest.raises(ValueError, match="loss"):
        DualEncoder(model.image_encoder, model.text_encoder, loss="cosine")
    with pytest.raises(ValueError, match="temperature"):
        DualEncoder(model.image_encoder, model.text_encoder, temperature=0)


def test_retrieval_report_ranks_count_ties_against_the_model():
    from mmzoo.retrieval import retrieval_report

    n = 6
    perfect = retrieval_report(np.eye(n), np.eye(n))
    assert perfect["image_to_text_median_rank"] == 1.0 and perfect["text_to_image_mrr"] == 1.0
    collapsed = retrieval_report(np.ones((n, 4)), np.ones((n, 4)), ks=(1, 5))
    assert collapsed["image_to_text_median_rank"] == n and collapsed["image_to_text_mrr"] == pytest.approx(1 / n)
    assert collapsed["image_to_text@5"] == 0.0 and collapsed["text_to_image@1"] == 0.0
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 8)).astype("float32"), rng.normal(size=(50, 8)).astype("float32")
    report = retrieval_report(a, b)
    sims = a @ b.T
    ranks = [(sims[i] >= sims[i, i]).sum() for i in range(50)]
    assert report["image_to_text_median_rank"] == np.median(ranks)
    assert report["image_to_text_mrr"] == pytest.approx(np.mean(1 / np.asarray(ranks)))
