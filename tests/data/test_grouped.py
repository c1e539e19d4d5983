"""``mmzoo.data.group_batches``: batches of one speaker each, on the real FSDD recordings."""

import keras
import numpy as np
import pytest

from mmzoo import data
from mmzoo.datasets import av_digits_recipe as recipe


@pytest.fixture(scope="module")
def speakers(shared_data):
    """Two recordings of each digit by each of the 5 FSDD speakers: waveforms, digits, speaker names."""
    paths = sorted(p for p in (shared_data / "fsdd" / "recordings").glob("*.wav")
                   if recipe.parse_fsdd_name(p.name)[2] < 2)
    waves = np.stack([recipe.fit_waveform(recipe.read_wav_int16(str(p))[0]) for p in paths])
    parsed = [recipe.parse_fsdd_name(p.name) for p in paths]
    return waves, np.array([d for d, _, _ in parsed]), np.array([s for _, s, _ in parsed])


def _epoch(ds):
    """One pass: the batches as lists of row indices (the labels are the row numbers)."""
    return [y.numpy().tolist() for _, y in ds]


def test_every_batch_is_one_speaker_every_epoch_covers_them_and_reshuffles(speakers):
    waves, _, who = speakers
    rows = np.arange(len(who))  # labels = row numbers, to see which examples each batch holds
    ds = data.group_batches({"audio": waves}, rows, who, batch_size=8, seed=3)
    assert len(ds) == 5 * (20 // 8)
    first, second = _epoch(ds), _epoch(ds)
    for epoch in (first, second):
        assert all(len(batch) == 8 and len(set(who[batch])) == 1 for batch in epoch)
        used = np.concatenate(epoch)
        assert len(set(used.tolist())) == len(used)  # each example at most once
        for name in set(who):  # 20 per speaker: 16 used, 4 left over
            assert np.isin(np.flatnonzero(who == name), used).sum() == 16
    assert first != second  # a new order every epoch ...
    assert len({tuple(who[b[0]] for b in first), tuple(who[b[0]] for b in second)}) == 2  # ... and speakers
    again = data.group_batches({"audio": waves}, rows, who, batch_size=8, seed=3)
    assert _epoch(again) == first and _epoch(again) == second  # seeded: the same epochs every run
    x, y = next(iter(ds))
    np.testing.assert_array_equal(x["audio"].numpy(), waves[y.numpy()])  # inputs stay with their labels


def test_partial_batches_are_kept_without_drop_remainder_and_a_model_trains(speakers):
    import mmzoo
    from mmzoo import branches, heads

    waves, digits, who = speakers
    ds = data.group_batches({"audio": waves}, digits, who, batch_size=8, seed=0, drop_remainder=False)
    epoch = [y.numpy() for _, y in ds]
    assert len(epoch) == len(ds) == 15 and sum(len(b) for b in epoch) == len(who)
    one = data.group_batches(waves, digits, who, batch_size=8, seed=0)  # a single array works too
    assert next(iter(one))[0].shape == (8, 4000)
    keras.utils.set_random_seed(0)
    model = mmzoo.compose([branches.audio_spectrogram_cnn(4000, 8000, filters=(8,), reduction="flatten")],
                          head=heads.multiclass(10))
    history = model.fit(data.group_batches({"audio": waves}, digits, who, batch_size=10, seed=0), epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"labels": np.zeros(3)}, "one length"),
        ({"groups": []}, "one length"),
        ({"batch_size": 0}, "`batch_size`"),
        ({"seed": 1.5}, "`seed`"),
        ({"batch_size": 5}, "at least batch_size=5.*'b': 4"),
    ],
)
def test_group_batches_rejects_bad_arguments(kwargs, match):
    arguments = {"inputs": {"x": np.zeros((8, 2))}, "labels": np.zeros(8), "groups": ["a"] * 4 + ["b"] * 4,
                 "batch_size": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        data.group_batches(**arguments)
    with pytest.raises(ValueError, match="empty"):
        data.group_batches({"x": np.zeros((0, 2))}, np.zeros(0), [])
