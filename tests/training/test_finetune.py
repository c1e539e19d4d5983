"""Fine-tuning helpers: freeze/unfreeze by branch, two-phase schedule, per-branch learning rates."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmzoo
from mmzoo import branches, finetune, heads


def _model():
    keras.utils.set_random_seed(0)
    image = branches.image_cnn((8, 8, 3), filters=(4,), batch_norm=True, name="image")
    text = branches.text_embedding(5, 20, 4, name="text")
    return mmzoo.compose([image, text], head=heads.multiclass(3), hidden=(4,))


def _data(n=16):
    rng = np.random.default_rng(0)
    x = {"image": rng.uniform(size=(n, 8, 8, 3)).astype("float32"), "text": rng.integers(1, 20, (n, 5)).astype("int32")}
    return x, rng.integers(0, 3, n)


def _snapshot(model, names):
    layers = [layer for n in names for layer in finetune.branch_layers(model, n)]
    return {w.path: w.numpy().copy() for layer in layers for w in layer.weights}


def _changed(before, model):
    now = {w.path: w.numpy() for w in model.weights}
    return {path for path, value in before.items() if not np.allclose(value, now[path])}


def test_two_phase_schedule_trains_head_then_everything():
    model = _model()
    x, y = _data()
    encoders = _snapshot(model, ["image", "text"])
    head = {w.path: w.numpy().copy() for w in model.get_layer("head_dense1").weights}
    finetune_lr = {}

    class Probe(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            finetune_lr[len(finetune_lr)] = float(self.model.optimizer.learning_rate)
            if len(finetune_lr) == 2:  # phase 1 just ended: encoders untouched, head trained
                assert not _changed(encoders, self.model)
                assert _changed(head, self.model) == set(head)

    h1, h2 = finetune.two_phase_fit(
        model, (x, y), ["image", "text"], learning_rate=0.05, finetune_learning_rate=0.01, batch_size=8,
        verbose=0, callbacks=[Probe()],
    )
    assert finetune_lr == {0: pytest.approx(0.05), 1: pytest.approx(0.01)}
    assert len(h1.history["loss"]) == 1 and len(h2.history["loss"]) == 1
    changed = _changed(encoders, model)
    bn_stats = {p for p in encoders if "moving" in p}
    assert bn_stats and not changed & bn_stats  # BatchNorm stayed frozen (inference mode)
    assert {p for p in encoders if "kernel" in p or "embeddings" in p} <= changed


def test_freeze_and_unfreeze_by_branch_name():
    model = _model()
    finetune.freeze(model, "image")
    assert all(not layer.trainable for layer in finetune.branch_layers(model, "image"))
    assert model.get_layer("text_embedding").trainable
    finetune.unfreeze(model, ["image"], keep_batchnorm_frozen=True)
    assert model.get_layer("image_conv1").trainable and not model.get_layer("image_bn1").trainable
    finetune.unfreeze(model, "image", keep_batchnorm_frozen=False)
    assert model.get_layer("image_bn1").trainable
    with pytest.raises(ValueError, match="branch='audio'"):
        finetune.freeze(model, "audio")


def test_lr_multipliers_scale_each_branch_update():
    model = _model()
    x, y = _data(8)
    optimizer = finetune.with_lr_multipliers(keras.optimizers.SGD(0.1), model, {"image": 0.5, "text": 2.0})
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(y, model(x, training=True))
        loss = tf.reduce_mean(loss)
    grads = dict(zip([w.path for w in model.trainable_weights], tape.gradient(loss, model.trainable_weights)))
    before = {w.path: w.numpy().copy() for w in model.trainable_weights}
    model.train_on_batch(x, y)
    for w in model.trainable_weights:
        factor = 0.5 if w.path.startswith("image_") else 2.0 if w.path.startswith("text_") else 1.0
        # The update is tiny next to the weight, so compare it with a tolerance of a few float32 ulps of the
        # weight (the eager and the compiled gradient may sum in different orders on another CPU).
        expected = -0.1 * factor * tf.convert_to_tensor(grads[w.path]).numpy()
        np.testing.assert_allclose(w.numpy() - before[w.path], expected, rtol=1e-3, atol=1e-6)
    with pytest.raises(ValueError, match="multipliers"):
        finetune.with_lr_multipliers(keras.optimizers.SGD(0.1), model, {"image": 0})


def test_two_phase_backups_are_per_phase(tmp_path):
    model = _model()
    x, y = _data()

    class Preempt(keras.callbacks.Callback):
        calls = 0

        def on_train_begin(self, logs=None):
            Preempt.calls += 1

        def on_epoch_end(self, epoch, logs=None):
            if Preempt.calls == 2 and epoch == 1:  # phase 2, after its first backup
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune.two_phase_fit(
            model, (x, y), ["image"], head_epochs=1, finetune_epochs=3, batch_size=8, verbose=0,
            backup_dir=str(tmp_path), callbacks=[Preempt()],
        )
    assert not (tmp_path / "phase1").exists()  # phase 1 finished: its backup is removed
    assert (tmp_path / "phase2").is_dir()  # phase 2 was interrupted: its backup is kept


def test_unfreeze_keeps_batchnorm_frozen_inside_nested_models():
    """A branch holding a nested model (keras.applications / KerasHub branches do): its BatchNorm stays frozen."""
    keras.utils.set_random_seed(0)
    inner_in = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="inner_conv")(inner_in)
    x = keras.layers.BatchNormalization(name="inner_bn")(x)
    backbone = keras.Model(inner_in, keras.layers.GlobalAveragePooling2D()(x), name="image_backbone")
    image = keras.Input((8, 8, 3), name="image")
    model = keras.Model({"image": image}, keras.layers.Dense(3, name="head")(backbone(image)))
    finetune.freeze(model, "image")
    assert not any(layer.trainable for layer in backbone.layers)
    finetune.unfreeze(model, "image", keep_batchnorm_frozen=True)
    assert backbone.get_layer("inner_conv").trainable and not backbone.get_layer("inner_bn").trainable
    assert {w.path for w in model.trainable_weights} >= {w.path for w in backbone.get_layer("inner_conv").weights}
    assert not {w.path for w in model.trainable_weights} & {w.path for w in backbone.get_layer("inner_bn").weights}
