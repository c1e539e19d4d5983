"""TPU readiness without a TPU: every zoo model trains a step under mixed precision, outputs float32;
training pipelines can have static shapes."""

import keras
import numpy as np
import pytest

import mmzoo
from mmzoo import zoo
from mmzoo.training import distribute


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("name", zoo.list_models())
def test_trains_a_step_with_float32_outputs(name, policy, real_data):
    before = keras.config.dtype_policy().name
    with distribute.precision_policy(policy):
        keras.utils.set_random_seed(0)
        model = zoo.build_tiny(name)
        model.run_eagerly = True  # one step: tracing would cost more than it saves
        x = {k: v[:8] for k, v in real_data.inputs_for(model).items()}
        y = real_data.labels_for(model)
        loss = model.train_on_batch(x, None if y is None else y[:8])
        outputs = model(x, training=False)
    assert keras.config.dtype_policy().name == before
    assert np.isfinite(np.asarray(loss, dtype="float64")).all(), loss
    for out in keras.tree.flatten(outputs):
        assert str(out.dtype) in ("float32", "<dtype: 'float32'>"), (name, out.dtype)
    assert any(layer.dtype_policy.name == policy for layer in _layers(model)), "the policy was not applied"


def _layers(model):
    return model._flatten_layers() if hasattr(model, "_flatten_layers") else model.layers


def test_training_pipelines_have_static_shapes():
    train_ds, _ = mmzoo.datasets.av_digits(batch_size=32, drop_remainder=True)
    inputs, labels = train_ds.element_spec
    assert labels.shape.is_fully_defined()
    assert all(spec.shape.is_fully_defined() for spec in inputs.values())
