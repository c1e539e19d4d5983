"""DualEncoder from KerasHub CLIP / SigLIP presets: tiny local presets (no network) on real OpenMoji pairs."""

import collections
import io
import itertools
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmzoo
from mmzoo import data, finetune
from mmzoo.data.tokenizers import KerasHubPromptTokenizer
from mmzoo.retrieval import DualEncoder, keras_hub_dual_encoder

keras_hub = pytest.importorskip("keras_hub")

IMAGE = (32, 32, 3)
SEQ = 12
ATOL = 1e-5  # on unit vectors: float32 round-off of graph vs eager runs, not tuned to one CPU


@pytest.fixture(scope="module")
def pairs(shared_data):
    """The first 8 OpenMoji emoji: PNG bytes, [0, 1] images as ImageColumn decodes them, and annotations."""
    with open(shared_data / "openmoji" / "openmoji.jsonl") as f:
        rows = [json.loads(line) for line in f][:8]
    pngs = [tf.io.read_file(str(shared_data / "openmoji" / "images" / f"{r['hexcode']}.png")).numpy() for r in rows]
    column = data.ImageColumn("image", IMAGE)
    images = tf.stack([column.decode_bytes(p) for p in pngs]).numpy()
    return pngs, images, [r["annotation"] for r in rows]


def tiny_bpe(texts, num_merges=40):
    """A CLIP-style BPE vocabulary (``</w>`` word ends) and merges learned on ``texts``; end token = largest id."""
    words = collections.Counter(w for t in texts for w in t.lower().replace("-", " - ").split())
    pieces = {w: [*w[:-1], w[-1] + "</w>"] for w in words}
    vocabulary = sorted({c for w in words for c in w} | {c + "</w>" for w in words for c in w})
    merges = []
    for _ in range(num_merges):
        counts = collections.Counter()
        for word, parts in pieces.items():
            for pair in itertools.pairwise(parts):
                counts[pair] += words[word]
        if not counts:
            break
        (a, b), _ = counts.most_common(1)[0]
        merges.append(f"{a} {b}")
        vocabulary.append(a + b)
        for word, parts in pieces.items():
            merged, i = [], 0
            while i < len(parts):
                if parts[i:i + 2] == [a, b]:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            pieces[word] = merged
    vocabulary += ["<|startoftext|>", "<|endoftext|>"]  # CLIP pools at the largest id: the end token
    return {token: i for i, token in enumerate(vocabulary)}, merges


CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


@pytest.fixture(scope="module")
def clip_preset(tmp_path_factory, pairs):
    keras.utils.set_random_seed(0)
    vocabulary, merges = tiny_bpe(pairs[2])
    tokenizer = keras_hub.models.CLIPTokenizer(vocabulary=vocabulary, merges=merges)
    converter = keras_hub.layers.CLIPImageConverter(
        image_size=IMAGE[:2], scale=[1 / (255 * s) for s in CLIP_STD],
        offset=[-m / s for m, s in zip(CLIP_MEAN, CLIP_STD)],
    )
    kwargs = {"hidden_dim": 16, "num_layers": 1, "num_heads": 2, "intermediate_dim": 32}
    backbone = keras_hub.models.CLIPBackbone(
        keras_hub.models.CLIPVisionEncoder(patch_size=8, image_shape=IMAGE, **kwargs),
        keras_hub.models.CLIPTextEncoder(vocabulary_size=len(vocabulary), embedding_dim=16,
                                         max_sequence_length=SEQ, **kwargs),
        projection_dim=8,
    )
    folder = str(tmp_path_factory.mktemp("clip_preset"))
    backbone.save_to_preset(folder)
    keras_hub.models.CLIPPreprocessor(tokenizer, converter, sequence_length=SEQ).save_to_preset(folder)
    return folder


def unit(x):
    x = np.asarray(x)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_clip_preset_dual_encoder_fine_tunes_exports_and_reloads(clip_preset, pairs, tmp_path):
    pngs, images, texts = pairs
    model, tokenizer = keras_hub_dual_encoder(clip_preset, learning_rate=0.01)
    assert isinstance(model, DualEncoder) and model.name == "clip_dual_encoder"
    assert isinstance(tokenizer, KerasHubPromptTokenizer) and tokenizer.sequence_length == SEQ
    assert model.temperature == pytest.approx(0.07)  # the preset head's 1 / exp(logit_scale)
    assert model.image_encoder.input.shape == (None, *IMAGE) and model.text_encoder.input.dtype == "int32"
    ids = tokenizer(tf.constant(texts)).numpy()
    start, end = len(tokenizer.vocabulary) - 2, len(tokenizer.vocabulary) - 1
    assert ids.dtype == np.int32 and ids.shape == (8, SEQ) and (ids[:, 0] == start).all()
    assert ((ids == end).sum(axis=1) == 1).all() and ids[0, 4:].tolist() == [0] * (SEQ - 4)  # "grinning face"
    # The towers are the preset's own image and text embeddings (its projection heads), L2-normalised.
    reference = keras_hub.models.Backbone.from_preset(clip_preset)
    converter = keras_hub.layers.ImageConverter.from_preset(clip_preset)
    np.testing.assert_allclose(model.image_encoder(images),
                               unit(reference.get_vision_embeddings(converter(images * 255.0))), atol=ATOL)
    np.testing.assert_allclose(model.text_encoder(ids), unit(reference.get_text_embeddings(ids)), atol=ATOL)
    np.testing.assert_allclose(np.linalg.norm(model.text_encoder(ids), axis=-1), 1.0, atol=ATOL)

    # LiT-style: the image tower frozen with the finetune tools, one contrastive step trains the text tower only.
    image_trainable = len(model.image_encoder.trainable_weights)
    finetune.freeze(model, "image")
    assert model.image_encoder.trainable_weights == []
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    image_before = [w.numpy().copy() for w in model.image_encoder.weights]
    text_before = [w.numpy().copy() for w in model.text_encoder.weights]
    history = model.fit(tf.data.Dataset.from_tensor_slices({"image": images, "text": ids}).batch(8), verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(image_before, model.image_encoder.weights))
    changed = [not np.allclose(a, w.numpy()) for a, w in zip(text_before, model.text_encoder.weights)]
    assert changed.count(True) >= len(changed) - 1  # all but maybe an unused embedding row block
    assert model.get_layer("image_encoder").get_layer("image_backbone").trainable is False
    finetune.unfreeze(model, "image")
    assert len(model.image_encoder.trainable_weights) == image_trainable
    model.compile(optimizer=keras.optimizers.Adam(0.01))  # re-compile after changing `trainable`

    # The export's raw signatures decode PNGs / tokenize strings as the columns do and embed with the towers.
    columns = {"image": data.ImageColumn("image", IMAGE), "text": data.TextColumn("annotation", tokenizer)}
    export = str(tmp_path / "export")
    mmzoo.export(model, export, preprocessing=columns)
    served = tf.saved_model.load(export).signatures
    got_images = served["embed_image_raw"](image=tf.constant(pngs))["image_embedding"].numpy()
    got_texts = served["embed_text_raw"](text=tf.constant(texts))["text_embedding"].numpy()
    expected_texts = model.text_encoder(tokenizer(tf.constant(texts))).numpy()
    np.testing.assert_allclose(got_images, model.image_encoder(images), atol=ATOL)
    np.testing.assert_allclose(got_texts, expected_texts, atol=ATOL)
    reloaded = data.load_tokenizer(tmp_path / "export" / "assets" / "tokenizers" / "text")
    assert isinstance(reloaded, KerasHubPromptTokenizer)
    np.testing.assert_array_equal(reloaded(tf.constant(texts)).numpy(), ids)

    path = str(tmp_path / "clip.keras")
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(again, DualEncoder) and again.temperature == model.temperature
    np.testing.assert_allclose(again.image_encoder(images), model.image_encoder(images), atol=ATOL)
    np.testing.assert_allclose(again.text_encoder(ids), expected_texts, atol=ATOL)


def test_siglip_preset_dual_encoder_trains_both_towers(tmp_path, pairs):
    spm = pytest.importorskip("sentencepiece")
    _, images, texts = pairs
    keras.utils.set_random_seed(0)
    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([t.lower().replace("-", "") for t in texts]), model_writer=proto, vocab_size=21,
        model_type="WORD", pad_id=0, eos_id=1, unk_id=2, bos_id=-1, minloglevel=2,
    )
    tokenizer = keras_hub.models.SigLIPTokenizer(proto=proto.getvalue())
    kwargs = {"hidden_dim": 16, "num_layers": 1, "num_heads": 2, "intermediate_dim": 32}
    backbone = keras_hub.models.SigLIPBackbone(
        keras_hub.models.SigLIPVisionEncoder(patch_size=8, image_shape=IMAGE, **kwargs),
        keras_hub.models.SigLIPTextEncoder(vocabulary_size=tokenizer.vocabulary_size(), embedding_dim=16,
                                           max_sequence_length=SEQ, **kwargs),
    )
    preprocessor = keras_hub.models.SigLIPPreprocessor(
        tokenizer, keras_hub.layers.SigLIPImageConverter(image_size=IMAGE[:2], scale=1 / 127.5, offset=-1.0),
        sequence_length=SEQ,
    )
    # A backbone object and its preprocessor (what a preset folder holds, without the round trip).
    model, tok = keras_hub_dual_encoder(backbone, preprocessor=preprocessor, learning_rate=0.01, name="lit")
    assert model.name == "lit" and tok.model_kind == "SigLIP"
    ids = tok(tf.constant(texts)).numpy()
    assert ids[0].tolist()[:3] == [*tokenizer("grinning face"), 1]  # then </s> padding (id 1)
    assert (ids[:, -1] == tok.pad_id).all() and tok.pad_id == tokenizer.end_token_id
    assert tok.ragged_ids(tf.constant(texts)).row_lengths().numpy().tolist() == [int((r != 1).sum()) + 1 for r in ids]
    assert tok.coverage(texts) == {"texts": 8, "truncated": 0, "longest": 6, "tokens": 36, "unknown_tokens": 0}
    assert tok.coverage(["grinning zebra"])["unknown_tokens"] == 1  # SentencePiece's <unk>
    np.testing.assert_allclose(model.text_encoder(ids), unit(backbone.get_text_embeddings(ids)), atol=ATOL)
    encoders = (model.image_encoder, model.text_encoder)
    before = [[w.numpy().copy() for w in encoder.trainable_weights] for encoder in encoders]
    model.fit(tf.data.Dataset.from_tensor_slices({"image": images, "text": ids}).batch(8), verbose=0)
    for encoder, weights in zip(encoders, before):  # both towers train
        assert any(not np.allclose(a, w.numpy()) for a, w in zip(weights, encoder.trainable_weights)), encoder.name
    with pytest.raises(ValueError, match="sequence_length"):  # SigLIP pools the last position: exactly its length
        keras_hub_dual_encoder(backbone, preprocessor=preprocessor, sequence_length=SEQ - 2)


def test_bad_arguments_fail_clearly(clip_preset, tmp_path):
    with pytest.raises(ValueError, match="preset_or_backbone"):
        keras_hub_dual_encoder(42)
    with pytest.raises(ValueError, match="preset_or_backbone"):
        keras_hub_dual_encoder(str(tmp_path))  # an existing folder that is no preset: no download attempted
    bert = keras_hub.models.BertBackbone(vocabulary_size=10, num_layers=1, num_heads=1, hidden_dim=4,
                                         intermediate_dim=4, max_sequence_length=4)
    with pytest.raises(ValueError, match="preset_or_backbone.*CLIP or SigLIP"):
        keras_hub_dual_encoder(bert)
    with pytest.raises(ValueError, match="sequence_length"):
        keras_hub_dual_encoder(clip_preset, sequence_length=SEQ + 1)
    with pytest.raises(ValueError, match="image_shape"):
        keras_hub_dual_encoder(clip_preset, image_shape=(32, 32))
    with pytest.raises(ValueError, match="preprocessor"):
        KerasHubPromptTokenizer(keras_hub.models.BertTextClassifierPreprocessor(
            keras_hub.models.BertTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])))
