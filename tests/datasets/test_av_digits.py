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
