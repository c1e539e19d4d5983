import numpy as np
import pytest
import tensorflow as tf

import mmzoo


def test_embedded_av_digits_default():
    train_ds, test_ds = mmzoo.datasets.av_digits()
    x, y = next(iter(train_ds))
    assert x["image"].shape == (32, 28, 28, 1) and x["audio"].shape == (32, 4000) and y.dtype == tf.int32
    assert sum(len(y) for _, y in test_ds) == 250 and sum(len(y) for _, y in train_ds) == 2000  # degraded + clean copy


def test_av_digits_full_size_matches_embedded_recipe(tmp_path):
    import os
    from pathlib import Path

    data_dir = os.environ.get("MMZOO_DATA") or str(Path(__file__).resolve().parents[2] / ".." / "shared" / "data")
    full = mmzoo.datasets.load_full_arrays(data_dir, degraded=False)
    embedded = mmzoo.datasets.av_digits_recipe.load_arrays(degraded=False)
    # The 250 test pairs are the same in both (same split, pairing and waveform fitting).
    np.testing.assert_array_equal(full["test"][1], embedded["test"][1])
    np.testing.assert_allclose(full["test"][0]["image"], embedded["test"][0]["image"], atol=1e-6)
    with pytest.raises(FileNotFoundError):
        mmzoo.datasets.av_digits(data_dir=str(tmp_path))


def test_loaders_are_public():
    assert callable(mmzoo.datasets.emoji_groups) and callable(mmzoo.datasets.emoji_retrieval)
    with pytest.raises(ValueError, match="batch_size"):
        mmzoo.datasets.av_digits(batch_size=0)


def test_speaker_folds_hold_each_speaker_out(shared_data):
    from mmzoo.datasets import av_digits_recipe as recipe
    from mmzoo.datasets.av_digits_full import speaker_folds

    folds = dict(speaker_folds(str(shared_data)))
    names = sorted(p.name for p in (shared_data / "fsdd" / "recordings").glob("*.wav"))
    speakers = sorted({recipe.parse_fsdd_name(n)[1] for n in names})
    assert sorted(folds) == speakers and len(speakers) == 5
    for speaker, arrays in folds.items():
        train_ids, test_ids = arrays["train_ids"], arrays["test_ids"]
        # The held-out speaker's recordings are all in test and none in train; together they are every recording.
        assert {recipe.parse_fsdd_name(n)[1] for n in test_ids} == {speaker}
        assert speaker not in {recipe.parse_fsdd_name(n)[1] for n in train_ids}
        assert sorted([*train_ids, *test_ids]) == names
        for split, ids in (("train", train_ids), ("test", test_ids)):
            inputs, labels = arrays[split]
            assert len(labels) == len(ids) == len(inputs["audio"]) == len(inputs["image"])
            np.testing.assert_array_equal(labels, [recipe.parse_fsdd_name(n)[0] for n in ids])
    # The pairing and degradation are the recipe's, seeded: the same fold comes out the same twice.
    ((_, again),) = speaker_folds(str(shared_data), speakers="lucas")
    np.testing.assert_array_equal(again["test"][0]["image"], folds["lucas"]["test"][0]["image"])
    np.testing.assert_array_equal(again["train"][0]["audio"], folds["lucas"]["train"][0]["audio"])
    # Clean pairs: train images come from the even MNIST indices, test images from the odd ones, same digit.
    ((_, clean),) = speaker_folds(str(shared_data), degraded=False, speakers=["george"])
    mnist_images, mnist_labels = recipe.read_mnist(str(shared_data / "mnist"))
    index_of = {image.tobytes(): i for i, image in enumerate(mnist_images)}
    for split, parity in (("train", 0), ("test", 1)):
        inputs, labels = clean[split]
        found = [index_of[np.round(image[..., 0] * 255).astype(np.uint8).tobytes()] for image in inputs["image"]]
        assert {i % 2 for i in found} == {parity} and len(set(found)) == len(found)
        np.testing.assert_array_equal(mnist_labels[found], labels)
    with pytest.raises(ValueError, match="speakers"):
        speaker_folds(str(shared_data), speakers=("nobody",))
