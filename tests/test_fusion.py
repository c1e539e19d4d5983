import keras
import numpy as np
import pytest

import mmzoo
from mmzoo import branches, fusion, heads

A = np.random.RandomState(0).randn(4, 6).astype("float32")
B = np.random.RandomState(1).randn(4, 6).astype("float32")
C = np.random.RandomState(2).randn(4, 3).astype("float32")


def test_concat():
    out = fusion.concat()([A, C])
    np.testing.assert_allclose(out, np.concatenate([A, C], -1))


def test_add_and_multiply_without_projection_when_widths_match():
    add = fusion.add()
    np.testing.assert_allclose(add([A, B]), A + B, rtol=1e-6)
    assert not add.weights
    np.testing.assert_allclose(fusion.multiply()([A, B]), A * B, rtol=1e-6)


def test_projections_when_widths_differ_or_units_given():
    add = fusion.add()
    assert add([A, C]).shape == (4, 3)  # default: the narrowest width (capped at DEFAULT_MAX_UNITS)
    assert len(add.projections) == 2
    mul = fusion.multiply(units=5)
    assert mul([A, B]).shape == (4, 5)


@pytest.mark.parametrize("make", [fusion.add, fusion.multiply, fusion.weighted_sum, fusion.attention])
def test_default_projection_width_is_the_narrowest_input_capped(make):
    wide = np.zeros((2, 300), "float32")
    wider = np.zeros((2, 1000), "float32")
    layer = make()
    assert layer([wide, wider]).shape == (2, fusion.DEFAULT_MAX_UNITS)
    assert [p.units for p in layer.projections] == [fusion.DEFAULT_MAX_UNITS] * 2
    assert make()([A, C]).shape == (4, 3)  # narrower than the cap: the narrowest input
    assert make(units=300)([wide, wider]).shape == (2, 300)  # an explicit width wins


def _av_digits_branches():
    from mmzoo.datasets import av_digits_recipe as data

    image = branches.image_cnn(data.IMAGE_SHAPE, filters=(32, 64), reduction="flatten", name="image")
    audio = branches.audio_spectrogram_cnn(
        data.NUM_SAMPLES, data.SAMPLE_RATE, filters=(32, 64), reduction="flatten", name="audio"
    )
    return [image, audio]


def test_default_fusions_on_flattened_av_digits_branches_stay_small():
    """The zoo's own flattened branches (1600 and 5120 wide) once made attention() a 35M-weight model."""
    parts = _av_digits_branches()
    widths = [b.features.shape[-1] for b in parts]
    sizes = {}
    for name in ("concat", "attention", "weighted_sum", "add", "multiply"):
        model = mmzoo.compose(parts, fusion=name, head=heads.multiclass(10), hidden=(64,), compile=False)
        sizes[name] = model.count_params()
        if name != "concat":
            layer = model.get_layer("fusion")
            assert layer.fused_width == min(min(widths), fusion.DEFAULT_MAX_UNITS)
            projection_weights = sum(int(np.prod(w.shape)) for p in layer.projections for w in p.weights)
            assert projection_weights == layer.fused_width * (sum(widths) + len(widths))
    for name, size in sizes.items():
        assert size < 3 * sizes["concat"], (name, size, sizes["concat"])  # was 75x for attention and weighted_sum


def test_fusions_under_mixed_precision_compute_in_float16_with_float32_weights():
    x = [A, C]
    for make in (fusion.add, fusion.multiply, fusion.weighted_sum, fusion.attention):
        reference = make()
        layer = type(reference).from_config({**reference.get_config(), "dtype": "mixed_float16"})
        out = layer(x)
        assert out.dtype == "float16", make.__name__
        assert {w.dtype for w in layer.weights} == {"float32"}, make.__name__
        reference(x)
        reference.set_weights(layer.get_weights())
        np.testing.assert_allclose(np.asarray(out, "float32"), reference(x), rtol=1e-2, atol=1e-2)
    layer = fusion.AttentionFusion(units=8, attention_dim=4, dtype="mixed_float16")
    weights = np.asarray(layer.compute_weights(x), "float32")
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=2e-3)


def test_weighted_sum_starts_equal_and_is_softmax_normalised():
    layer = fusion.weighted_sum()
    np.testing.assert_allclose(layer([A, B]), (A + B) / 2, rtol=1e-5)
    layer.weight_logits.assign([2.0, -1.0])
    w = layer.modality_weights()
    assert w.sum() == pytest.approx(1.0) and w[0] > w[1]
    np.testing.assert_allclose(layer([A, B]), w[0] * A + w[1] * B, rtol=1e-5)


def test_attention_weights_are_per_example_and_sum_to_one():
    layer = fusion.attention(units=8, attention_dim=4)
    out = layer([A, C])
    assert out.shape == (4, 8)
    weights = np.asarray(layer.compute_weights([A, C]))
    assert weights.shape == (4, 2)
    np.testing.assert_allclose(weights.sum(1), 1.0, rtol=1e-5)
    assert np.std(weights[:, 0]) > 0  # depends on the example


@pytest.mark.parametrize("mode", ["mean", "sum", "weighted"])
def test_late_fusion_modes(mode):
    layer = fusion.late(mode)
    out = np.asarray(layer([A, B]))
    expected = {"mean": (A + B) / 2, "sum": A + B, "weighted": (A + B) / 2}[mode]
    np.testing.assert_allclose(out, expected, rtol=1e-5)


@pytest.mark.parametrize(
    "layer", [fusion.concat(), fusion.add(units=4), fusion.multiply(), fusion.weighted_sum(),
              fusion.attention(units=4), fusion.late("weighted")]
)
def test_fusion_config_round_trip(layer):
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"].startswith("mmzoo>")


def test_fusion_errors():
    with pytest.raises(ValueError, match="units"):
        fusion.add(units=0)
    with pytest.raises(ValueError, match="mode"):
        fusion.late("max")
    with pytest.raises(ValueError, match="fusion"):
        fusion.get("average")
    with pytest.raises(ValueError, match="list"):
        fusion.add()(A)
    with pytest.raises(ValueError, match="one shape"):
        fusion.late()([A, C])


def test_attention_weights_readout_from_a_trained_model(real_data):
    keras.utils.set_random_seed(0)
    model = mmzoo.build("av_digits_attention", image_filters=(4,), audio_filters=(4,), units=8, hidden=(8,))
    x = {"image": real_data.image((28, 28, 1))[:6], "audio": real_data.audio(4000)[:6]}
    weights = fusion.attention_weights(model, x)
    assert weights.shape == (6, 2)
    np.testing.assert_allclose(weights.sum(1), 1.0, rtol=1e-5)
    plain = mmzoo.build("av_digits_concat", image_filters=(4,), audio_filters=(4,), hidden=(8,))
    with pytest.raises(ValueError, match="AttentionFusion"):
        fusion.attention_weights(plain, x)


def test_compose_with_each_fusion_trains_a_step(real_data):
    x = {"image": real_data.image((28, 28, 1))[:8], "audio": real_data.audio(2000)[:8]}
    y = real_data.groups[:8] % 3
    for name in fusion.FUSIONS:
        image = branches.image_cnn((28, 28, 1), filters=(4,), name="image")
        audio = branches.audio_conv1d(2000, filters=(4,), name="audio")
        model = mmzoo.compose([image, audio], fusion=name, head=heads.multiclass(3), hidden=(8,))
        model.run_eagerly = True  # one step: tracing would cost more than it saves
        loss = model.train_on_batch(x, y)
        assert np.isfinite(loss).all(), name
