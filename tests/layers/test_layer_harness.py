"""Keras's own layer test harness (``run_layer_test``) on every mmzoo custom layer and fusion.

``keras.src.testing.TestCase.run_layer_test`` is how Keras tests its own
layers: a ``get_config``/``from_config`` and ``serialize_keras_object``
round trip, build and symbolic-call checks, an eager call, one compiled
training step, and a mixed-precision run in which the layer itself is built
with ``dtype="mixed_float16"`` (outputs must come out in the layer's compute
dtype as its ``compute_output_spec`` says, float weights must stay float32).
Zoo tests set the *global* policy instead, which does not catch a sublayer
made without ``dtype=self.dtype_policy``; this file does.

Only the harness's mixed-precision and serialization checks are required for
every layer; a check is turned off only where it cannot apply, with the
reason next to it.
"""

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from keras.src import testing
from keras.src.saving import serialization_lib

from mmzoo import fusion, heads
from mmzoo.layers import (
    ApplicationPreprocess,
    ArgmaxTokenPooling,
    HubLayer,
    RandomTimeStretch,
    SequencePooling,
    Spectrogram,
    TokenIdsToEncoderInputs,
    WaveformNormalization,
)

# Unequal widths, so the projecting fusions build their projections. A tuple (as Keras's merging-layer
# tests pass it), not a list: the harness's training step feeds it through a generator, which needs a tuple.
TWO_WIDTHS = ((2, 6), (2, 3))


def attention_weight_count(num_inputs):
    """AttentionFusion's own weights: scorer (kernel + bias, kernel) and one LayerNorm (gamma, beta) per input."""
    return 3 + 2 * num_inputs


class LayerHarnessTest(testing.TestCase):
    def setUp(self):
        # keras's TestCase.setUp turns traceback filtering off for good; put it back after each test.
        self._filtering = keras.config.is_traceback_filtering_enabled()
        super().setUp()

    def tearDown(self):
        if self._filtering:
            keras.config.enable_traceback_filtering()
        super().tearDown()

    # --- mmzoo.heads --------------------------------------------------------------------------------

    @parameterized.named_parameters(
        ("binary", {"kind": "binary", "units": 1, "class_names": ["no", "yes"], "threshold": 0.3}, 1),
        ("multiclass", {"kind": "multiclass", "units": 4, "top_k": 2}, 4),
        ("multilabel", {"kind": "multilabel", "units": 3, "threshold": 0.5}, 3),
        ("regression", {"kind": "regression", "units": 2}, 2),
    )
    def test_head_activation(self, init_kwargs, units):
        self.run_layer_test(
            heads.HeadActivation,
            init_kwargs,
            input_shape=(2, units),
            expected_output_shape=(2, units),
            expected_output_dtype="float32",
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
            # No weights of its own: the harness's training step would have nothing to train.
            run_training_check=False,
        )

    # --- mmzoo.layers -------------------------------------------------------------------------------

    @parameterized.named_parameters(("log", "log"), ("magnitude", "magnitude"))
    def test_spectrogram(self, mode):
        self.run_layer_test(
            Spectrogram,
            {"frame_length": 64, "frame_step": 32, "fft_length": 128, "mode": mode},
            input_shape=(2, 256),
            expected_output_shape=(2, 5, 65),  # frames = 1 + (256 - fft_length) // 32
            expected_output_dtype="float32",
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
        )

    @parameterized.named_parameters(("rms", "rms"), ("peak", "peak"))
    def test_waveform_normalization(self, method):
        self.run_layer_test(
            WaveformNormalization,
            {"target_rms": 0.2, "epsilon": 1e-4, "method": method, "target_peak": 0.8},
            input_shape=(2, 256),
            expected_output_shape=(2, 256),
            expected_output_dtype="float32",
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
        )

    def test_random_time_stretch(self):
        self.run_layer_test(
            RandomTimeStretch,
            {"max_stretch": 0.3, "seed": 3},
            input_shape=(2, 12, 5),
            expected_output_shape=(2, 12, 5),
            expected_output_dtype="float32",
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
            expected_num_seed_generators=1,
            # No weights: the harness's training step would have nothing to train.
            run_training_check=False,
        )

    @parameterized.named_parameters(("avg", "avg"), ("max", "max"), ("first", "first"))
    def test_sequence_pooling(self, mode):
        self.run_layer_test(
            SequencePooling,
            {"mode": mode},
            input_shape=(2, 5, 4),
            expected_output_shape=(2, 4),
            expected_output_dtype="float32",
            expected_num_trainable_weights=0,
            supports_masking=True,
        )

    def test_argmax_token_pooling(self):
        rng = np.random.default_rng(0)
        sequence = rng.normal(size=(2, 5, 4)).astype("float32")
        token_ids = np.array([[3, 9, 0, 0, 0], [4, 2, 7, 11, 0]], "int32")  # end tokens at steps 1 and 3
        self.run_layer_test(
            ArgmaxTokenPooling,
            {},
            input_data=(sequence, token_ids),
            expected_output_shape=(2, 4),
            expected_output_dtype="float32",
            expected_num_trainable_weights=0,
        )
        np.testing.assert_array_equal(ArgmaxTokenPooling()((sequence, token_ids)).numpy(), sequence[[0, 1], [1, 3]])

    @parameterized.named_parameters(
        ("caffe", "ResNet50"), ("tf", "MobileNetV2"), ("torch", "DenseNet121"), ("identity", "EfficientNetB0")
    )
    def test_application_preprocess(self, application):
        self.run_layer_test(
            ApplicationPreprocess,
            {"application": application},
            input_shape=(2, 8, 8, 3),
            expected_output_shape=(2, 8, 8, 3),
            expected_output_dtype="float32",
            expected_num_trainable_weights=0,
        )

    @parameterized.named_parameters(("tf_hub", "input_type_ids"), ("no_segments", None))
    def test_token_ids_to_encoder_inputs(self, segment_key):
        ids = np.array([[5, 3, 0, 0], [7, 0, 0, 0]], "int32")
        expected = {"input_word_ids": ids, "input_mask": (ids != 0).astype("int32")}
        if segment_key:
            expected[segment_key] = np.zeros_like(ids)
        self.run_layer_test(
            TokenIdsToEncoderInputs,
            {"segment_key": segment_key},
            input_data=ids,
            expected_output=expected,
            expected_output_dtype={key: "int32" for key in expected},
            expected_num_trainable_weights=0,
            # Its outputs are int32 ids and masks: there is no float output to sum into a loss and
            # nothing to train. The mixed-precision check still runs (outputs must stay int32).
            run_training_check=False,
        )

    def test_hub_layer(self):
        handle = self._hub_model()
        # HubLayer.from_config re-reads the SavedModel, which Keras refuses in safe mode (as it does for
        # TFSMLayer); the harness's serialization round trip runs in an explicit unsafe scope.
        with serialization_lib.SafeModeScope(False):
            self.run_layer_test(
                HubLayer,
                {"handle": handle, "trainable": True},
                input_shape=(2, 4),
                expected_output_shape=(2, 3),
                expected_output_dtype="float32",
                expected_num_trainable_weights=1,
                expected_num_non_trainable_weights=1,
            )

    def test_hub_layer_under_mixed_precision_feeds_the_savedmodel_its_own_dtype(self):
        layer = HubLayer(self._hub_model(), dtype="mixed_float16")
        x = np.linspace(-1, 1, 8, dtype="float32").reshape(2, 4)
        out = layer(x)
        self.assertEqual(out.dtype, "float16")
        self.assertEqual(layer.input_dtype, "float32")  # the SavedModel takes float32: no float16 round trip
        self.assertAllClose(out, HubLayer(self._hub_model())(x), atol=2e-3, rtol=2e-3)
        self.assertEqual({w.dtype for w in layer.weights}, {"float32"})

    def _hub_model(self):
        if getattr(self, "_handle", None) is None:
            module = tf.Module()
            module.kernel = tf.Variable(tf.reshape(tf.range(12, dtype=tf.float32) / 12.0, (4, 3)), name="kernel")
            module.offset = tf.Variable(tf.fill([3], 0.1), trainable=False, name="offset")

            @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
            def call(x):
                return tf.tanh(x @ module.kernel) - module.offset

            module.__call__ = call
            self._handle = self.get_temp_dir()
            tf.saved_model.save(module, self._handle)
        return self._handle

    # --- mmzoo.fusion -------------------------------------------------------------------------------

    def test_concat_fusion(self):
        self.run_layer_test(
            fusion.ConcatFusion,
            {},
            input_shape=TWO_WIDTHS,
            expected_output_shape=(2, 9),
            expected_output_dtype="float32",
            expected_num_trainable_weights=0,
        )

    @parameterized.named_parameters(
        ("add", fusion.AddFusion, 0, {}),
        ("multiply", fusion.MultiplyFusion, 0, {}),
        ("weighted_sum", fusion.WeightedSumFusion, 1, {}),
        ("attention", fusion.AttentionFusion, attention_weight_count, {"output_mode": "sum"}),
    )
    def test_projecting_fusions(self, cls, own_weights, extra):
        own_weights = own_weights(2) if callable(own_weights) else own_weights
        # Unequal widths: two Dense projections (kernel + bias each) to the default width, the narrowest.
        self.run_layer_test(
            cls,
            dict(extra),
            input_shape=TWO_WIDTHS,
            expected_output_shape=(2, 3),
            expected_output_dtype="float32",
            expected_num_trainable_weights=4 + own_weights,
        )
        # Explicit units.
        self.run_layer_test(
            cls,
            {"units": 5, **extra},
            input_shape=TWO_WIDTHS,
            expected_output_shape=(2, 5),
            expected_output_dtype="float32",
            expected_num_trainable_weights=4 + own_weights,
        )

    @parameterized.named_parameters(
        ("add", fusion.AddFusion, 0, {}),
        ("multiply", fusion.MultiplyFusion, 0, {}),
        ("weighted_sum", fusion.WeightedSumFusion, 1, {}),
        ("attention", fusion.AttentionFusion, attention_weight_count, {"output_mode": "sum"}),
    )
    def test_projecting_fusions_with_equal_widths_add_no_projection(self, cls, own_weights, extra):
        own_weights = own_weights(3) if callable(own_weights) else own_weights
        self.run_layer_test(
            cls,
            dict(extra),
            input_shape=((2, 4), (2, 4), (2, 4)),
            expected_output_shape=(2, 4),
            expected_output_dtype="float32",
            expected_num_trainable_weights=own_weights,
        )

    def test_attention_fusion_concat_output(self):
        self.run_layer_test(
            fusion.AttentionFusion,
            {},
            input_shape=TWO_WIDTHS,
            expected_output_shape=(2, 9),
            expected_output_dtype="float32",
            expected_num_trainable_weights=4 + attention_weight_count(2),
        )

    @parameterized.named_parameters(("mean", "mean", 0), ("sum", "sum", 0), ("weighted", "weighted", 1))
    def test_late_fusion(self, mode, weights):
        self.run_layer_test(
            fusion.LateFusion,
            {"mode": mode},
            input_shape=((2, 3), (2, 3)),
            expected_output_shape=(2, 3),
            expected_output_dtype="float32",
            expected_num_trainable_weights=weights,
        )

    # --- mmzoo.fusion: gated, low-rank, cross-modal attention ------------------------------------------

    @parameterized.named_parameters(
        # Two inputs: a sigmoid gate; three: a softmax over modalities. Weights: a tanh projection per
        # input (kernel + bias) and the gate (kernel + bias).
        ("two", TWO_WIDTHS, None, (2, 3), 6),
        ("two_units", TWO_WIDTHS, 5, (2, 5), 6),
        ("three", ((2, 4), (2, 4), (2, 4)), None, (2, 4), 8),
    )
    def test_gated_fusion(self, input_shape, units, output_shape, num_weights):
        self.run_layer_test(
            fusion.GatedFusion,
            {"units": units},
            input_shape=input_shape,
            expected_output_shape=output_shape,
            expected_output_dtype="float32",
            expected_num_trainable_weights=num_weights,
        )

    @parameterized.named_parameters(
        ("two", TWO_WIDTHS, {}, (2, 3), 3),  # a factor per input + the bias
        ("two_units_rank", TWO_WIDTHS, {"units": 5, "rank": 2}, (2, 5), 3),
        ("three", ((2, 4), (2, 4), (2, 4)), {}, (2, 4), 4),
    )
    def test_low_rank_fusion(self, input_shape, init_kwargs, output_shape, num_weights):
        self.run_layer_test(
            fusion.LowRankFusion,
            init_kwargs,
            input_shape=input_shape,
            expected_output_shape=output_shape,
            expected_output_dtype="float32",
            expected_num_trainable_weights=num_weights,
        )

    @parameterized.named_parameters(("default", {}, (2, 4)), ("units_heads", {"units": 6, "num_heads": 2}, (2, 6)))
    def test_cross_modal_attention(self, init_kwargs, output_shape):
        # Two sequences of different lengths and widths (text tokens, image regions); without masks every
        # step is valid. Weights: query, key, value and output EinsumDense (kernel + bias) per direction.
        self.run_layer_test(
            fusion.CrossModalAttention,
            init_kwargs,
            input_shape=((2, 5, 6), (2, 3, 4)),
            expected_output_shape=output_shape,
            expected_output_dtype="float32",
            expected_num_trainable_weights=16,
        )


def test_spectrogram_under_mixed_precision_matches_float32_on_real_speech(real_data):
    """The STFT runs in float32 under "mixed_float16": only the rounding of the result to float16 differs."""
    waves = real_data.audio(4000)[:4]
    full = Spectrogram(frame_length=256, frame_step=128)
    mixed = Spectrogram(frame_length=256, frame_step=128, dtype="mixed_float16")
    assert mixed.input_dtype == "float32"
    expected = np.asarray(full(waves))
    out = mixed(waves)
    assert out.dtype == "float16"
    assert tuple(out.shape) == tuple(full.compute_output_shape(waves.shape)) == expected.shape
    # float16 keeps ~3 significant digits; log magnitudes of speech lie within about [-14, 6].
    np.testing.assert_allclose(np.asarray(out, "float32"), expected, rtol=5e-3, atol=2e-2)


def test_waveform_normalization_under_mixed_precision_matches_float32_on_real_speech(real_data):
    """The RMS and the scaling run in float32 under "mixed_float16": only the rounding of the result differs."""
    waves = real_data.audio(4000)[:4]
    expected = np.asarray(WaveformNormalization()(waves))
    mixed = WaveformNormalization(dtype="mixed_float16")
    assert mixed.input_dtype == "float32"
    out = mixed(waves)
    assert out.dtype == "float16"
    np.testing.assert_allclose(np.sqrt(np.mean(expected**2, axis=-1)), 0.1, rtol=1e-5)
    # float16 keeps ~3 significant digits; the normalised samples lie within a few units.
    np.testing.assert_allclose(np.asarray(out, "float32"), expected, rtol=2e-3, atol=1e-4)
