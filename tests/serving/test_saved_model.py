"""Export/reload checks for every zoo model, raw serving and bad inputs.

All zoo models (tiny sizes) are exported once per module; one fresh Python
process that never imports mmzoo reloads them all with
``tf.saved_model.load`` and compares against the Keras predictions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmzoo
from mmzoo import data, heads, serving
from mmzoo.datasets import av_digits_recipe as av_digits
from mmzoo.serving import audio as serving_audio
from mmzoo.serving import read_metadata

sys.path.insert(0, os.path.dirname(__file__))  # --import-mode=importlib: make the helper importable
import serving_fixtures as fx

ATOL = 1e-5

# Runs in a fresh interpreter: plain TensorFlow, no mmzoo.
RELOAD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops; TF Serving ships them too)

    report = {}
    for name, case in json.load(open(sys.argv[1])).items():
        loaded = tf.saved_model.load(case["path"])
        arrays = np.load(case["arrays"], allow_pickle=True)
        numeric = {k[2:]: tf.constant(arrays[k]) for k in arrays.files if k.startswith("x_")}
        raw = {k[4:]: tf.constant(list(arrays[k]), tf.string) for k in arrays.files if k.startswith("raw_")}
        out = loaded.signatures["serving_default"](**numeric)
        raw_out = loaded.signatures["serving_raw"](**raw)
        expected = {k[2:]: arrays[k] for k in arrays.files if k.startswith("y_")}
        report[name] = {
            "signatures": sorted(loaded.signatures),
            "vs_keras": {k: float(np.max(np.abs(out[k].numpy() - v))) for k, v in expected.items()},
            "raw_vs_tensor": {
                k: float(np.max(np.abs(raw_out[k].numpy().astype(float) - v.numpy().astype(float))))
                for k, v in out.items() if v.dtype != tf.string
            },
            "class_names_equal": all(
                bool(np.all(raw_out[k].numpy() == v.numpy())) for k, v in out.items() if v.dtype == tf.string
            ),
        }
        for endpoint in ("embed_image", "embed_text"):
            if endpoint in loaded.signatures:
                key = endpoint.split("_")[1]
                emb = loaded.signatures[endpoint](**{key: numeric[key]})[f"{key}_embedding"].numpy()
                emb_raw = loaded.signatures[endpoint + "_raw"](**{key: raw[key]})[f"{key}_embedding"].numpy()
                report[name][endpoint] = float(np.max(np.abs(emb - arrays[f"y_{key}_embedding"])))
                report[name][endpoint + "_raw"] = float(np.max(np.abs(emb_raw - emb)))
    report["mmzoo_imported"] = "mmzoo" in sys.modules
    print("REPORT" + json.dumps(report))
    """
)


def _keras_outputs(model, x):
    if hasattr(model, "image_encoder"):
        return {
            "image_embedding": model.image_encoder(x["image"], training=False).numpy(),
            "text_embedding": model.text_encoder(x["text"], training=False).numpy(),
        }
    return {"probabilities": keras.ops.convert_to_numpy(model(x, training=False))}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Every zoo model (tiny), exported with preprocessing, with its real inputs and Keras outputs."""
    root = tmp_path_factory.mktemp("exports")
    cases = {}
    for name in mmzoo.list_models():
        start = time.perf_counter()
        keras.utils.set_random_seed(0)
        model = mmzoo.zoo.build_tiny(name)
        columns = fx.columns_for(name, model)
        raw = fx.raw_inputs(columns)
        x = fx.decode_with_data(columns, raw)
        expected = _keras_outputs(model, x)
        path = mmzoo.export(model, str(root / name), preprocessing=columns)
        arrays = str(root / f"{name}.npz")
        np.savez(
            arrays,
            **{f"x_{k}": v for k, v in x.items()},
            **{f"raw_{k}": np.asarray(v, object) for k, v in raw.items()},
            **{f"y_{k}": v for k, v in expected.items()},
        )
        print(f"export {name}: {time.perf_counter() - start:.1f}s")
        cases[name] = {"path": path, "arrays": arrays, "model": model, "columns": columns, "raw": raw, "x": x,
                       "expected": expected}
    return cases


@pytest.fixture(scope="module")
def fresh_process_report(exports, tmp_path_factory):
    root = tmp_path_factory.mktemp("reload")
    spec = root / "cases.json"
    spec.write_text(json.dumps({n: {"path": c["path"], "arrays": c["arrays"]} for n, c in exports.items()}))
    script = root / "reload.py"
    script.write_text(RELOAD_SCRIPT)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(script), str(spec)], check=False, capture_output=True, text=True, cwd=str(root), env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(f"fresh-process reload of {len(exports)} exports: {time.perf_counter() - start:.1f}s")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("REPORT")][-1]
    return json.loads(line[len("REPORT"):])


def test_fresh_process_does_not_import_mmzoo(fresh_process_report):
    assert fresh_process_report["mmzoo_imported"] is False


@pytest.mark.parametrize("name", mmzoo.list_models())
def test_reloaded_predictions_equal_keras(fresh_process_report, name):
    report = fresh_process_report[name]
    assert {"serving_default", "serving_raw", "metadata"} <= set(report["signatures"])
    assert report["vs_keras"], report
    for key, diff in report["vs_keras"].items():
        assert diff <= ATOL, (name, key, diff)


@pytest.mark.parametrize("name", mmzoo.list_models())
def test_serving_raw_equals_mmzoo_data_decoding(fresh_process_report, name):
    report = fresh_process_report[name]
    for key, diff in report["raw_vs_tensor"].items():
        assert diff <= ATOL, (name, key, diff)
    assert report["class_names_equal"]


def test_dual_encoder_has_encoder_endpoints(fresh_process_report):
    report = fresh_process_report["image_text_retrieval"]
    for endpoint in ("embed_image", "embed_text", "embed_image_raw", "embed_text_raw"):
        assert endpoint in report["signatures"]
        assert report[endpoint] <= ATOL, (endpoint, report[endpoint])


def test_metadata_holds_class_names_and_input_contract(exports):
    meta = read_metadata(exports["av_digits_concat"]["path"])
    assert meta["task"] == "multiclass"
    # Explicit columns (no preset): the class names come from the model's head.
    assert meta["class_names"] == [str(d) for d in range(10)]
    assert meta["head"] == {"kind": "multiclass", "units": 10, "class_names": meta["class_names"], "top_k": 3}
    assert meta["threshold"] is None
    assert meta["inputs"]["image"] == {
        "dtype": "float32",
        "shape": [None, 28, 28, 1],
        "optional": False,  # no modality dropout: every input is required
        "absent_encoding": None,
        "raw": {"kind": "image", "encoding": "PNG, JPEG, BMP or GIF bytes", "image_shape": [28, 28, 1],
                "fit": "resize", "pad_value": 1.0, "max_pixels": 4096 * 4096},
    }
    assert meta["inputs"]["audio"]["raw"]["sampling_rate"] == fx.AUDIO_RATE
    assert sorted(meta["signatures"]["serving_raw"]["outputs"]) == ["class_id", "class_name", "probabilities"]
    loaded = tf.saved_model.load(exports["av_digits_concat"]["path"])
    assert json.loads(loaded.signatures["metadata"]()["json"].numpy()) == meta


def test_metadata_saves_the_training_tokenizer(exports):
    case = exports["image_text_cnn"]
    meta = read_metadata(case["path"])
    tokenizer = data.load_tokenizer(os.path.join(case["path"], meta["inputs"]["text"]["raw"]["tokenizer_dir"]))
    texts = tf.constant([t.decode() for t in case["raw"]["text"]])
    np.testing.assert_array_equal(tokenizer(texts).numpy(), case["columns"]["text"].tokenizer(texts).numpy())


def test_binary_model_outputs_threshold_class(exports):
    case = exports["image_text_cnn"]
    served = mmzoo.load(case["path"])
    assert served.task == "binary" and served.threshold == heads.from_model(case["model"]).threshold
    out = served.predict(case["x"])
    np.testing.assert_array_equal(out["class_id"], (out["probabilities"][:, 0] >= served.threshold).astype(np.int32))


@pytest.mark.parametrize("text, reason", [
    (b"", "empty or whitespace-only text"),
    (b"   ", "empty or whitespace-only text"),
    (b"caf\xc3", "text is not valid UTF-8"),
    (b"face " * 20_001, "text longer than max_bytes=100000 bytes"),
])
def test_serving_refuses_the_text_training_refuses(exports, text, reason):
    """Empty, invalid UTF-8 and over-long text were served; the training pipeline refused them."""
    case = exports["image_text_cnn"]
    served = mmzoo.load(case["path"])
    raw = {k: list(v[:2]) for k, v in case["raw"].items()}
    assert served.predict_raw(raw)["probabilities"].shape[0] == 2
    raw["text"][1] = text
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        served.predict_raw(raw)
    assert f"serving input `text`: {reason}; bad example indices:" in str(error.value)
    assert read_metadata(case["path"])["inputs"]["text"]["raw"]["max_bytes"] == 100_000


@pytest.fixture(scope="module")
def av_export():
    model, path = fx.av_digits_export()
    pngs, _ = fx.mnist_pngs(2)
    wavs = [Path(p).read_bytes() for p in fx.fsdd_paths(2)]
    return {"model": model, "path": path, "served": mmzoo.load(path), "raw": {"image": pngs, "audio": wavs}}


def test_preset_stores_class_names_and_mmzoo_load_predicts(av_export):
    served = av_export["served"]
    assert served.class_names == [str(d) for d in range(10)]
    out = served.predict_raw(av_export["raw"])
    assert out["probabilities"].shape == (2, 10)
    np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1.0, atol=1e-5)
    assert [c.decode() for c in out["class_name"]] == [str(i) for i in out["class_id"]]


def test_preset_audio_reproduces_the_training_recipe(av_export):
    """serving_raw on real FSDD WAVs == serving_default on fit_waveform(read_wav_int16(path))."""
    paths = [os.path.join(fx.data_dir(), "fsdd", "recordings", f) for f in ("3_george_7.wav", "9_yweweler_12.wav")]
    paths += fx.fsdd_paths(2)
    pngs, _ = fx.mnist_pngs(len(paths))
    served = av_export["served"]
    raw_out = served.predict_raw({"image": pngs, "audio": [Path(p).read_bytes() for p in paths]})
    columns, _ = serving.preset("av_digits")
    images = np.stack([columns["image"].decode_bytes(tf.constant(b)).numpy() for b in pngs])
    audio = np.stack([av_digits.fit_waveform(av_digits.read_wav_int16(p)[0]) for p in paths])
    np.testing.assert_allclose(
        np.stack([columns["audio"].decode_bytes(tf.io.read_file(p)).numpy() for p in paths]), audio, atol=1e-6
    )
    out = served.predict({"image": images, "audio": audio})
    np.testing.assert_allclose(raw_out["probabilities"], out["probabilities"], atol=1e-4)
    meta_audio = served.inputs["audio"]["raw"]
    assert meta_audio["trim_leading_silence"] == {"frame": 32, "threshold": 0.05, "margin": 200}
    assert meta_audio["peak_normalize"] == 0.9


def test_fit_waveform_edge_cases_match_numpy():
    rng = np.random.RandomState(0)
    clips = [np.zeros(10), np.zeros(500), np.full(5, 0.1), rng.randn(7000) * 0.01,
             np.concatenate([np.zeros(3000), rng.randn(2000)]), rng.randn(9000)]
    for clip in clips:
        clip = clip.astype(np.float32)
        np.testing.assert_allclose(serving_audio.fit_waveform(tf.constant(clip), 4000).numpy(),
                                   av_digits.fit_waveform(clip), atol=1e-6)


def test_tfsm_layer_reloads_export(av_export):
    columns, _ = serving.preset("av_digits")
    x = fx.decode_with_data(columns, av_export["raw"])
    layer = keras.layers.TFSMLayer(av_export["path"], call_endpoint="serving_default")
    out = layer(x)
    expected = keras.ops.convert_to_numpy(av_export["model"](x, training=False))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out["probabilities"]), expected, atol=ATOL)


def _bad_calls(served, raw, x, bomb):
    png = raw["image"][0]
    wav = raw["audio"][0]
    garbage = b"\x00\x01not an image at all" * 4
    return {
        "garbage image bytes": (
            lambda: served.predict_raw({"image": [garbage], "audio": [wav]}),
            "serving input `image`: expected encoded image",
        ),
        "png where wav expected": (
            lambda: served.predict_raw({"image": [png], "audio": [png]}),
            "serving input `audio`: expected WAV bytes",
        ),
        "decompression bomb": (
            lambda: served.predict_raw({"image": [png, bomb], "audio": [wav, wav]}),
            "serving input `image`, example 1: image too large: more than max_pixels=16777216 pixels",
        ),
        "wav header then garbage": (  # tf.audio.decode_wav raised UnicodeDecodeError here
            lambda: served.predict_raw(
                {"image": [png, png], "audio": [wav, b"RIFF\x24\x00\x00\x00WAVE" + bytes(range(255, -1, -1))]}),
            "serving input `audio`, example 1: invalid WAV: no fmt and data chunks",
        ),
        "empty raw batch": (lambda: served.predict_raw({"image": [], "audio": []}), "empty batch"),
        "mismatched batch": (lambda: served.predict_raw({"image": [png, png], "audio": [wav]}), "same batch size"),
        "empty tensor batch": (
            lambda: served.predict({"image": np.zeros((0, 28, 28, 1)), "audio": np.zeros((0, 4000))}), "empty batch"
        ),
        "wrong shape": (lambda: served.predict({"image": np.zeros((1, 27, 28, 1)), "audio": x["audio"]}), "image"),
        "wrong dtype": (lambda: served.predict({"image": x["image"].astype(str), "audio": x["audio"]}), "image"),
        "signature dtype": (
            lambda: served.signatures["serving_default"](
                image=tf.zeros((1, 28, 28, 1), tf.float64), audio=tf.constant(x["audio"])
            ),
            "expected to be a float tensor but is a double tensor",
        ),
        "signature shape": (
            lambda: served.signatures["serving_default"](image=tf.zeros((1, 27, 28, 1)), audio=tf.constant(x["audio"])),
            "serving input `image`: wrong shape; expected (batch, 28, 28, 1)",
        ),
        "wrong keys": (lambda: served.predict({"image": x["image"]}), "audio"),
        "nan audio": (
            lambda: served.predict({"image": x["image"], "audio": np.where(np.arange(x["audio"].shape[1]) == 7,
                                                                            np.nan, x["audio"])}),
            "serving input `audio`: NaN or infinite values; bad example indices:",
        ),
        "pixels 0-255": (
            lambda: served.predict({"image": x["image"] * 255.0, "audio": x["audio"]}),
            "serving input `image`: pixel values outside [0, 1]",
        ),
        "uint8 pixels": (
            lambda: served.predict({"image": (x["image"] * 255).astype(np.uint8), "audio": x["audio"]}),
            "integer pixels are not converted silently",
        ),
    }


@pytest.mark.parametrize(
    "case",
    ["garbage image bytes", "png where wav expected", "decompression bomb", "wav header then garbage",
     "empty raw batch", "mismatched batch", "empty tensor batch",
     "wrong shape", "wrong dtype", "signature dtype", "signature shape", "wrong keys", "nan audio", "pixels 0-255",
     "uint8 pixels"],
)
def test_bad_input_names_the_input_and_model_keeps_serving(av_export, case, png_bomb):
    served = av_export["served"]
    columns, _ = serving.preset("av_digits")
    x = fx.decode_with_data(columns, {k: v[:1] for k, v in av_export["raw"].items()})
    call, expected_text = _bad_calls(served, av_export["raw"], x, png_bomb(20000, 20000))[case]
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError, TypeError)) as info:
        call()
    assert expected_text in str(info.value), str(info.value)[:2000]
    good = served.predict_raw({k: v[:1] for k, v in av_export["raw"].items()})
    assert good["probabilities"].shape == (1, 10)


def test_export_rejects_preprocessing_that_does_not_match(tmp_path):
    model = mmzoo.zoo.build_tiny("av_digits_concat")
    with pytest.raises(ValueError, match="Missing: \\['audio'\\]"):
        mmzoo.export(model, str(tmp_path / "m"), preprocessing={"image": data.ImageColumn("image", (28, 28, 1))})
    with pytest.raises(ValueError, match="decodes to float32 \\(32, 32, 1\\)"):
        mmzoo.export(
            model, str(tmp_path / "m"),
            preprocessing={
                "image": data.ImageColumn("image", (32, 32, 1)),
                "audio": data.AudioColumn("audio", 8000, 4000),
            },
        )
    with pytest.raises(ValueError, match="`class_names` must have 10 entries"):
        mmzoo.export(model, str(tmp_path / "m"), preprocessing="av_digits", class_names=["a", "b"])


def test_export_refuses_to_overwrite_a_non_savedmodel_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a SavedModel folder"):
        mmzoo.export(mmzoo.zoo.build_tiny("av_digits_concat"), str(tmp_path), preprocessing="av_digits")
    assert (tmp_path / "notes.txt").exists()


def test_failed_export_keeps_the_previous_model_and_leaves_no_partial_folder(tmp_path, monkeypatch):
    from mmzoo.serving import saved_model as saved_model_lib

    model = mmzoo.build("av_digits_concat")
    path = tmp_path / "model"
    mmzoo.export(model, path, preprocessing="av_digits")
    before = (path / "saved_model.pb").read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(saved_model_lib, "_save_keras_copy", full_disk)
    with pytest.raises(OSError, match="No space left"):
        mmzoo.export(model, path, preprocessing="av_digits")
    assert (path / "saved_model.pb").read_bytes() == before  # the older export is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no half-written sibling
    raw = {"image": fx.mnist_pngs(1)[0], "audio": [Path(fx.fsdd_paths(1)[0]).read_bytes()]}
    assert mmzoo.load(path).predict_raw(raw)["probabilities"].shape == (1, 10)


def _plain_model(seed):
    """A plain Keras model with one dict input (no mmzoo head): exports in a fraction of a second."""
    keras.utils.set_random_seed(seed)
    inputs = {"x": keras.Input((3,), name="x")}
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs["x"]))


def _export_plain(model, path):
    with pytest.warns(UserWarning, match="no serving_raw signature"):
        return mmzoo.export(model, path, task="multiclass")


def test_export_to_a_tensorflow_file_system_loads_replaces_and_keeps_metadata(tmp_path, monkeypatch):
    keras.utils.set_random_seed(0)
    model = mmzoo.zoo.build_tiny("av_digits_concat")
    raw = {"image": fx.mnist_pngs(2)[0], "audio": [Path(p).read_bytes() for p in fx.fsdd_paths(2)]}
    x = fx.decode_with_data(serving.presets.preset("av_digits")[0], raw)
    monkeypatch.chdir(tmp_path)  # whatever a local-only implementation would write lands here, not in the repo
    root = f"ram://{uuid.uuid4().hex}"
    path = mmzoo.export(model, f"{root}/model", preprocessing="av_digits")
    assert path == f"{root}/model" and tf.io.gfile.exists(f"{root}/model/saved_model.pb")
    served = mmzoo.load(path)
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(served.predict(x)["probabilities"], expected, atol=ATOL)
    np.testing.assert_allclose(served.predict_raw(raw)["probabilities"], expected, atol=ATOL)
    assert served.metadata == read_metadata(path) and served.class_names == [str(d) for d in range(10)]

    copied, copy = [], tf.io.gfile.copy

    def recording_copy(source, target, overwrite=False):
        copied.append(target[len(path) + 1 :])
        copy(source, target, overwrite=overwrite)

    monkeypatch.setattr(tf.io.gfile, "copy", recording_copy)
    other = _plain_model(1)
    _export_plain(other, path)  # replaces the AV-digits export
    assert copied[-1] == "saved_model.pb" and "assets/mmzoo_metadata.json" in copied  # the model file last
    features = np.random.default_rng(0).random((4, 3), np.float32)
    again = mmzoo.load(path)
    np.testing.assert_allclose(again.predict({"x": features})["probabilities"],
                               keras.ops.convert_to_numpy(other({"x": features})), atol=ATOL)
    assert sorted(again.inputs) == ["x"] and read_metadata(path)["task"] == "multiclass"
    assert not tf.io.gfile.exists(f"{path}/assets/tokenizers")  # no file of the old export is left
    assert [n.rstrip("/") for n in tf.io.gfile.listdir(root)] == ["model"]  # the staging folder is gone
    assert not any(tmp_path.iterdir())  # nothing was written locally


def test_interrupted_remote_export_leaves_a_folder_that_is_not_a_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = f"ram://{uuid.uuid4().hex}/model"
    _export_plain(_plain_model(0), path)
    copied, copy = [], tf.io.gfile.copy

    def killed_copy(source, target, overwrite=False):  # the connection is lost after two files
        if len(copied) == 2:
            raise tf.errors.UnavailableError(None, None, "connection lost")
        copied.append(target)
        copy(source, target, overwrite=overwrite)

    monkeypatch.setattr(tf.io.gfile, "copy", killed_copy)
    with pytest.raises(tf.errors.UnavailableError):
        _export_plain(_plain_model(1), path)
    assert not tf.io.gfile.exists(f"{path}/saved_model.pb")  # the old one was removed first, the new one not written
    with pytest.raises(FileNotFoundError, match="No SavedModel"):
        mmzoo.load(path)
