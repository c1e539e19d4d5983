"""KerasHub branches from local presets (tiny random BERT and ResNet, no network) on real OpenMoji data."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmzoo
from mmzoo import branches, data, heads

SEQ = 12
IMAGE = (32, 32, 3)


# A fresh interpreter with plain TensorFlow (no mmzoo, no keras_hub) serves raw strings and PNG bytes.
RAW_SERVING_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the KerasHub tokenizer's ops)

    arrays = np.load(sys.argv[1], allow_pickle=True)
    serve = tf.saved_model.load(sys.argv[2]).signatures["serving_raw"]
    out = serve(text=tf.constant(list(arrays["texts"]), tf.string), image=tf.constant(list(arrays["pngs"]), tf.string))
    print(float(np.max(np.abs(out["probabilities"].numpy() - arrays["expected"]))))
    """
)


@pytest.fixture(scope="module")
def openmoji_pngs(shared_data):
    """The first 8 OpenMoji rows and their PNG bytes."""
    with open(shared_data / "openmoji" / "openmoji.jsonl") as f:
        rows = [json.loads(line) for line in f][:8]
    pngs = [tf.io.read_file(str(shared_data / "openmoji" / "images" / f"{r['hexcode']}.png")) for r in rows]
    return rows, [p.numpy() for p in pngs]


@pytest.fixture(scope="module")
def openmoji_batch(openmoji_pngs):
    rows, pngs = openmoji_pngs
    rgba = tf.cast(tf.stack([tf.io.decode_png(p, 4) for p in pngs]), tf.float32) / 255.0
    images = tf.image.resize(rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:]), IMAGE[:2]).numpy()
    texts = [r["annotation"] for r in rows]
    labels = np.arange(len(rows)) % 3
    return images, texts, labels


@pytest.fixture(scope="module")
def presets(tmp_path_factory, openmoji_batch):
    import keras_hub

    keras.utils.set_random_seed(0)
    words = sorted({w for t in openmoji_batch[1] for w in t.lower().split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    root = tmp_path_factory.mktemp("presets")
    bert = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocab), num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
        max_sequence_length=SEQ,
    )
    bert.save_to_preset(str(root / "bert"))
    keras_hub.models.BertTextClassifierPreprocessor(
        keras_hub.models.BertTokenizer(vocabulary=vocab), sequence_length=SEQ
    ).save_to_preset(str(root / "bert"))
    resnet = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 8],
        stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="basic_block", image_shape=IMAGE,
    )
    resnet.save_to_preset(str(root / "resnet"))
    keras_hub.layers.ResNetImageConverter(image_size=IMAGE[:2], scale=1 / 255.0).save_to_preset(str(root / "resnet"))
    return {"bert": str(root / "bert"), "resnet": str(root / "resnet"), "bert_backbone": bert}


def test_image_text_model_from_local_presets_trains_and_exports(presets, openmoji_batch, openmoji_pngs, tmp_path):
    images, texts, labels = openmoji_batch
    text = branches.text_keras_hub(presets["bert"], sequence_length=SEQ)
    image = branches.image_keras_hub(presets["resnet"], IMAGE)
    assert text.features.shape == (None, 8) and image.features.shape == (None, 8)
    assert text.source == presets["bert"] and text.preprocessor is not None
    # The preset's converter takes [0, 255] images: the branch scales its [0, 1] input first.
    assert {"image_rescale", "image_image_converter"} <= {layer.name for layer in image.encoder().layers}
    model = mmzoo.compose([text, image], head=heads.multiclass(3), hidden=(4,), learning_rate=0.01)
    raw = tf.data.Dataset.from_tensor_slices(({"text": texts, "image": images}, labels)).batch(8)
    ds = branches.apply_preprocessors(raw, [text, image])
    features, _ = next(iter(ds))
    ids = features["text"].numpy()
    assert ids.dtype == np.int32 and ids.shape == (8, SEQ) and (ids[:, 0] == 2).all()  # [CLS] first
    assert (ids > 4).sum() >= 8  # annotation words found in the vocabulary, not [UNK]
    bert_before = model.get_layer("text_backbone").weights[0].numpy().copy()
    history = model.fit(ds, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert not np.allclose(bert_before, model.get_layer("text_backbone").weights[0].numpy())

    expected = model.predict(features, verbose=0)
    # serving_raw decodes with the mmzoo.data columns of training; the branch's preprocessor is their tokenizer.
    columns = {"text": data.TextColumn("annotation", text.preprocessor), "image": data.ImageColumn("image", IMAGE)}
    _, pngs = openmoji_pngs
    decoded = {"text": tf.stack([columns["text"].decode(t) for t in texts]),
               "image": tf.stack([columns["image"].decode_bytes(p) for p in pngs])}
    np.testing.assert_array_equal(decoded["text"].numpy(), ids)  # TextColumn == the branch's tf.data ids
    expected_raw = model.predict(decoded, verbose=0)
    export = str(tmp_path / "export")
    mmzoo.export(model, export, preprocessing=columns)
    served = tf.saved_model.load(export).signatures["serving_default"]
    got = served(text=features["text"], image=tf.constant(images))["probabilities"]
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)

    reloaded = data.load_tokenizer(tmp_path / "export" / "assets" / "tokenizers" / "text")
    assert isinstance(reloaded, data.KerasHubTokenizer) and reloaded.sequence_length == SEQ
    np.testing.assert_array_equal(reloaded(tf.constant(texts)).numpy(), ids)
    np.savez(tmp_path / "raw.npz", texts=np.array(texts, object), pngs=np.array(pngs, object), expected=expected_raw)
    result = subprocess.run([sys.executable, "-c", RAW_SERVING_SCRIPT, str(tmp_path / "raw.npz"), export],
                            check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert float(result.stdout.strip().splitlines()[-1]) <= 1e-5


def test_backbone_object_and_mean_pooling(presets):
    text = branches.text_keras_hub(presets["bert_backbone"], sequence_length=SEQ, reduction="avg", trainable=False)
    assert text.preprocessor is None and text.features.shape == (None, 8)
    encoder = text.encoder()
    assert encoder.trainable_weights == []
    ids = np.array([[2, 5, 6, 3, 0, 0, 0, 0, 0, 0, 0, 0]], "int32")
    padded_differently = ids.copy()
    padded_differently[0, 4:] = 0
    np.testing.assert_allclose(encoder(ids), encoder(padded_differently), rtol=1e-6)


def test_bad_sources_fail_clearly(presets, tmp_path):
    with pytest.raises(ValueError, match="preset_or_backbone"):
        branches.text_keras_hub(42)
    with pytest.raises(ValueError, match="preset_or_backbone"):
        branches.text_keras_hub(presets["resnet"], sequence_length=SEQ)
    with pytest.raises(ValueError, match="sequence_length"):
        branches.text_keras_hub(presets["bert"], sequence_length=SEQ + 1)


@pytest.mark.parametrize("design", ["bert_resnet_concat", "bert_resnet_lstm_late_fusion"])
def test_reference_designs_take_pretrained_sources(design, presets, openmoji_batch):
    from mmzoo.zoo import reference

    images, _, _ = openmoji_batch
    extra = {"num_samples": 1024, "audio_units": 4, "hidden": 8} if design.endswith("fusion") else {"hidden": (8,)}
    model = getattr(reference, design)(
        num_classes=3, sequence_length=SEQ, image_shape=IMAGE, text_source=presets["bert"],
        image_source=presets["resnet"], **extra,
    )
    assert {"text_backbone", "image_backbone"} <= {layer.name for layer in model.layers}
    x = {"text": np.full((2, SEQ), 5, "int32"), "image": images[:2]}
    if "audio" in model.input:
        x["audio"] = np.zeros((2, 1024), "float32")
    assert model(x).shape == (2, 3)


@pytest.mark.parametrize("design", ["image_text_cnn", "image_text_audio_cnn_rnn_conv1d", "bert_resnet_concat",
                                    "bert_resnet_lstm_late_fusion"])
def test_reference_designs_build_unimodal_baselines(design, real_data):
    from mmzoo import zoo

    for modality in zoo.get(design).modalities:
        model = zoo.build_tiny(design, modalities=(modality,))
        assert list(model.input) == [modality]
        x = {k: v[:2] for k, v in real_data.inputs_for(model).items()}
        assert model.predict(x, verbose=0).shape[0] == 2
    with pytest.raises(ValueError, match="modalities="):
        zoo.build_tiny(design, modalities=("video",))
    with pytest.raises(ValueError, match="modalities="):
        zoo.build_tiny(design, modalities=())
    with pytest.raises(ValueError, match="Received: image_shape=\\(32, 32\\)"):
        zoo.build_tiny(design, image_shape=(32, 32))
    with pytest.raises(ValueError, match="Received: sequence_length=0"):
        zoo.build_tiny(design, sequence_length=0)


@pytest.mark.parametrize("design", ["image_text_cnn", "image_text_audio_cnn_rnn_conv1d", "bert_resnet_concat",
                                    "bert_resnet_lstm_late_fusion", "image_text_retrieval"])
def test_reference_designs_take_their_input_geometry(design):
    from mmzoo import zoo

    geometry = {"image_shape": (40, 48, 3), "sequence_length": 12}
    if "audio" in zoo.get(design).modalities:
        geometry["num_samples"] = 2048
    model = zoo.build_tiny(design, **geometry)
    inputs = ({"image": model.image_encoder.input, "text": model.text_encoder.input} if design == "image_text_retrieval"
              else model.input)
    assert tuple(inputs["image"].shape) == (None, 40, 48, 3)
    assert tuple(inputs["text"].shape) == (None, 12)
    if "audio" in inputs:
        assert tuple(inputs["audio"].shape) == (None, 2048)
