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


def attention_sum(units=None):
    """``fusion.attention`` with the summed output (``(batch, units)``, like the other element-wise fusions)."""
    return fusion.attention(units=units, output_mode="sum")


@pytest.mark.parametrize("make", [fusion.add, fusion.multiply, fusion.weighted_sum, attention_sum])
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
    for make in (fusion.add, fusion.multiply, fusion.weighted_sum, attention_sum, fusion.attention):
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


def test_attention_concat_output_is_the_inputs_scaled_by_their_weights():
    layer = fusion.attention(units=8, attention_dim=4)
    out = np.asarray(layer([A, C]))
    weights = np.asarray(layer.compute_weights([A, C]))
    np.testing.assert_allclose(out, np.concatenate([A * 2 * weights[:, :1], C * 2 * weights[:, 1:]], 1), rtol=1e-5)
    # Each modality keeps at least uniform_mix / M of the weight, so none can be switched off.
    assert weights.min() >= 0.25 - 1e-6
    # An absent modality (all-zeros features) gets weight 0; the present one all of it.
    absent = np.asarray(layer.compute_weights([A, np.zeros_like(C)]))
    np.testing.assert_allclose(absent, np.tile([[1.0, 0.0]], (len(A), 1)), atol=1e-6)


def test_attention_weights_are_per_example_and_sum_to_one():
    layer = fusion.attention(units=8, attention_dim=4, output_mode="sum")
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
    x_text = {"image": x["image"], "text": real_data.text(8)[:8]}
    for name in fusion.FUSIONS:
        image = branches.image_cnn((28, 28, 1), filters=(4,), name="image")
        if getattr(fusion.get(name), "uses_sequences", False):  # attends over image regions and text tokens
            other, inputs = branches.text_embedding(8, 100, embedding_dim=4, name="text"), x_text
        else:
            other, inputs = branches.audio_conv1d(2000, filters=(4,), name="audio"), x
        model = mmzoo.compose([image, other], fusion=name, head=heads.multiclass(3), hidden=(8,))
        model.run_eagerly = True  # one step: tracing would cost more than it saves
        loss = model.train_on_batch(inputs, y)
        assert np.isfinite(loss).all(), name


# --- GatedFusion, LowRankFusion, CrossModalAttention ----------------------------------------------------


def _rand(seed, *shape):
    return np.random.RandomState(seed).randn(*shape).astype("float32")


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_gated_fusion_two_modalities_is_the_gmu_formula():
    layer = fusion.gated(units=5)
    out = np.asarray(layer([A, C]))
    assert out.shape == (4, 5)
    (w1, b1), (w2, b2) = (p.get_weights() for p in layer.projections)
    wz, bz = layer.gate.get_weights()
    z = _sigmoid(np.concatenate([A, C], -1) @ wz + bz)
    h1, h2 = np.tanh(A @ w1 + b1), np.tanh(C @ w2 + b2)
    np.testing.assert_allclose(out, z * h1 + (1 - z) * h2, rtol=1e-5, atol=1e-6)
    gates = layer.gate_values([A, C])
    np.testing.assert_allclose(gates, np.stack([z.mean(1), (1 - z).mean(1)], -1), rtol=1e-5, atol=1e-6)


def test_gated_fusion_many_modalities_softmax_gates_sum_to_one():
    x = [A, C, _rand(3, 4, 7)]
    layer = fusion.gated()
    out = np.asarray(layer(x))
    units = fusion.default_units([6, 3, 7])
    assert out.shape == (4, units) and layer.gate.units == units * 3
    logits = np.concatenate(x, -1) @ layer.gate.get_weights()[0] + layer.gate.get_weights()[1]
    gates = _softmax(logits.reshape(4, units, 3), axis=-1)
    hidden = np.stack([np.tanh(xi @ p.kernel.numpy() + p.bias.numpy()) for xi, p in zip(x, layer.projections)], -1)
    np.testing.assert_allclose(out, (gates * hidden).sum(-1), rtol=1e-5, atol=1e-6)
    readout = layer.gate_values(x)
    assert readout.shape == (4, 3)
    np.testing.assert_allclose(readout.sum(1), 1.0, rtol=1e-5)
    assert np.std(readout[:, 0]) > 0  # per example


def test_low_rank_fusion_equals_the_formula():
    layer = fusion.low_rank(units=3, rank=2)
    layer([A, C])
    rng = np.random.RandomState(5)
    layer.set_weights([rng.randn(*w.shape).astype("float32") for w in layer.weights])  # a nonzero bias too
    f1, f2, bias = layer.get_weights()
    assert f1.shape == (2, 7, 3) and f2.shape == (2, 4, 3) and bias.shape == (3,)
    a1 = np.concatenate([A, np.ones((4, 1), "float32")], -1)
    c1 = np.concatenate([C, np.ones((4, 1), "float32")], -1)
    expected = sum((a1 @ f1[r]) * (c1 @ f2[r]) for r in range(2)) + bias
    np.testing.assert_allclose(np.asarray(layer([A, C])), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("widths", [(6, 3), (1600, 5120), (6, 3, 40)])
@pytest.mark.parametrize("rank", [1, 4, 16])
def test_low_rank_fusion_starts_with_unit_scale_outputs(widths, rank):
    """On unit-variance inputs the initial output has unit variance: no vanishing or exploding product."""
    keras.utils.set_random_seed(0)
    x = [_rand(i, 256, w) for i, w in enumerate(widths)]
    std = float(np.std(np.asarray(fusion.low_rank(units=64, rank=rank)(x))))
    assert 0.6 < std < 1.6, std  # measured 0.95 - 1.02 over these cases


def _cross_attention_reference(layer, a, b, mask_a, mask_b):
    """``CrossModalAttention`` in numpy, straight from its weights."""
    weights = {w.path.split("/", 1)[1]: np.asarray(w) for w in layer.weights}

    def dense(x, prefix, role):
        return np.einsum("btc,chd->bthd", x, weights[f"{prefix}_{role}/kernel"]) + weights[f"{prefix}_{role}/bias"]

    out = 0
    for prefix, q_in, k_in, q_mask, k_mask in (("a_to_b", a, b, mask_a, mask_b), ("b_to_a", b, a, mask_b, mask_a)):
        q, k, v = dense(q_in, prefix, "query"), dense(k_in, prefix, "key"), dense(k_in, prefix, "value")
        scores = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1])
        scores = np.where(k_mask[:, None, None, :] > 0, scores, -np.inf)
        attended = np.einsum("bhqk,bkhd->bqhd", _softmax(scores), v)
        attended = np.einsum("bqhd,hde->bqe", attended, weights[f"{prefix}_output/kernel"])
        attended += weights[f"{prefix}_output/bias"]
        out = out + (attended * q_mask[..., None]).sum(1) / q_mask.sum(1, keepdims=True)
    return out


def test_cross_attention_equals_the_formula_and_ignores_padding():
    tokens, regions = _rand(0, 3, 5, 6), _rand(1, 3, 4, 8)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], "int32")
    layer = fusion.cross_attention(units=6, num_heads=2)
    out = np.asarray(layer([tokens, regions], masks=[mask, None]))
    assert out.shape == (3, 6)
    expected = _cross_attention_reference(layer, tokens, regions, mask.astype("float32"), np.ones((3, 4), "float32"))
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    # Padded tokens (as keys and as queries) cannot change the output; a real token does.
    changed = tokens.copy()
    changed[mask == 0] = 100.0 * _rand(2, int((mask == 0).sum()), 6)
    np.testing.assert_allclose(np.asarray(layer([changed, regions], masks=[mask, None])), out, rtol=1e-5, atol=1e-6)
    changed[0, 1] += 1.0
    assert not np.allclose(np.asarray(layer([changed, regions], masks=[mask, None]))[0], out[0], atol=1e-4)
    # A mask on the second sequence works the same way; without masks every step counts.
    region_mask = np.array([[1, 1, 0, 0]] * 3, "int32")
    masked = np.asarray(layer([tokens, regions], masks=[mask, region_mask]))
    moved = regions.copy()
    moved[:, 2:] = -regions[:, 2:]
    np.testing.assert_allclose(np.asarray(layer([tokens, moved], masks=[mask, region_mask])), masked, rtol=1e-5,
                               atol=1e-6)
    assert not np.allclose(np.asarray(layer([changed, regions]))[0], out[0], atol=1e-4)


def test_cross_attention_of_an_all_padding_text_is_zero():
    layer = fusion.cross_attention(units=4, num_heads=2)
    out = np.asarray(layer([_rand(0, 2, 3, 4), _rand(1, 2, 5, 4)], masks=[np.array([[0, 0, 0], [1, 0, 0]]), None]))
    np.testing.assert_array_equal(out[0], 0.0)  # no token: nothing to attend from, nothing to attend to
    assert np.abs(out[1]).sum() > 0


def test_new_fusions_under_mixed_precision_compute_in_float16_with_float32_weights():
    cases = [
        (fusion.gated(), [A, C], {}),
        (fusion.gated(), [A, C, _rand(3, 4, 7)], {}),
        (fusion.low_rank(units=4, rank=3), [A, C], {}),
        (fusion.cross_attention(units=4, num_heads=2), [_rand(0, 2, 5, 6), _rand(1, 2, 4, 3)],
         {"masks": [np.array([[1, 1, 1, 0, 0]] * 2), None]}),
    ]
    for reference, x, kwargs in cases:
        name = type(reference).__name__
        layer = type(reference).from_config({**reference.get_config(), "dtype": "mixed_float16"})
        out = layer(x, **kwargs)
        assert out.dtype == "float16", name
        assert {w.dtype for w in layer.weights} == {"float32"}, name
        reference(x, **kwargs)
        reference.set_weights(layer.get_weights())
        np.testing.assert_allclose(np.asarray(out, "float32"), reference(x, **kwargs), rtol=2e-2, atol=2e-2,
                                   err_msg=name)
    gated = fusion.GatedFusion(units=4, dtype="mixed_float16")
    np.testing.assert_allclose(gated.gate_values([A, C]).sum(1), 1.0, atol=2e-3)


@pytest.mark.parametrize(
    "layer", [fusion.gated(units=4), fusion.low_rank(units=4, rank=3), fusion.cross_attention(units=8, num_heads=2)]
)
def test_new_fusion_config_round_trip(layer):
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert keras.saving.serialize_keras_object(layer)["registered_name"].startswith("mmzoo>")
    assert fusion.get(layer) is layer


def _image_text_branches():
    image = branches.image_cnn((16, 16, 3), filters=(4,), padding="same", name="image")
    text = branches.text_embedding(sequence_length=6, vocabulary_size=30, embedding_dim=4, name="text")
    return image, text


@pytest.mark.parametrize("name", ["gated", "low_rank", "cross_attention"])
def test_composed_models_with_new_fusions_reload_in_safe_mode(name, real_data, tmp_path):
    keras.utils.set_random_seed(0)
    model = mmzoo.compose(list(_image_text_branches()), fusion=name, head=heads.multiclass(3), hidden=(4,),
                          compile=False)
    x = {"image": real_data.image((16, 16, 3))[:4], "text": real_data.text(6, vocab=30)[:4]}
    expected = np.asarray(model(x))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert type(loaded.get_layer("fusion")) is type(model.get_layer("fusion"))
    np.testing.assert_allclose(np.asarray(loaded(x)), expected, rtol=1e-6, atol=1e-6)


def test_composed_cross_attention_ignores_padded_token_embeddings(real_data):
    keras.utils.set_random_seed(0)
    model = mmzoo.compose(list(_image_text_branches()), fusion=fusion.cross_attention(units=4, num_heads=2),
                          head=heads.multiclass(3), hidden=(4,), compile=False)
    ids = real_data.text(6, vocab=30)[:8]
    assert (ids == 0).any() and (ids != 0).any()
    x = {"image": real_data.image((16, 16, 3))[:8], "text": ids}
    expected = np.asarray(model(x))
    embedding = model.get_layer("text_embedding")
    table = embedding.get_weights()[0]
    embedding.set_weights([np.concatenate([table[:1] + 3.0, table[1:]])])  # the padding id's row only
    np.testing.assert_allclose(np.asarray(model(x)), expected, rtol=1e-6, atol=1e-6)
    used = int(ids[0, 0])
    embedding.set_weights([np.concatenate([table[:used], table[used:used + 1] + 3.0, table[used + 1:]])])
    assert not np.allclose(np.asarray(model(x))[0], expected[0], atol=1e-5)


def test_compose_with_a_sequence_fusion_needs_branch_sequences():
    image, _ = _image_text_branches()
    audio = branches.audio_conv1d(2000, filters=(4,), name="audio")
    with pytest.raises(ValueError, match="branch 'audio'"):
        mmzoo.compose([image, audio], fusion="cross_attention", head=heads.multiclass(3))


def test_new_fusion_errors():
    with pytest.raises(ValueError, match="units"):
        fusion.gated(units=0)
    with pytest.raises(ValueError, match="rank"):
        fusion.low_rank(rank=0)
    with pytest.raises(ValueError, match="num_heads"):
        fusion.cross_attention(num_heads=0)
    with pytest.raises(ValueError, match="two"):
        fusion.cross_attention()([_rand(0, 2, 3, 4)] * 3)
    with pytest.raises(ValueError, match="two"):
        fusion.cross_attention()([A, B])  # feature vectors, not sequences
    with pytest.raises(ValueError, match="rank-2"):
        fusion.gated()([_rand(0, 2, 3, 4), A])
