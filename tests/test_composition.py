import keras
import pytest

import mmzoo
from mmzoo import branches, fusion, heads
from mmzoo.composition import LargeModelWarning


def _pair():
    return branches.image_cnn((28, 28, 1), filters=(4,), name="image"), branches.audio_conv1d(
        1000, filters=(4,), name="audio"
    )


def test_dict_inputs_keyed_by_branch_name_and_compiled():
    model = mmzoo.compose(list(_pair()), head=heads.multiclass(5), hidden=(16, 8), dropout=0.1, name="m")
    assert set(model.input) == {"image", "audio"}
    assert model.name == "m"
    assert model.output.shape == (None, 5)
    names = [layer.name for layer in model.layers]
    assert {"fusion", "head_dense1", "head_dropout1", "head_dense2", "output_logits", "output"} <= set(names)
    assert model.compiled and isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)


def test_late_fusion_builds_one_output_layer_per_branch():
    model = mmzoo.compose(list(_pair()), fusion=fusion.late("sum"), head=heads.multiclass(3), hidden=(8,))
    names = [layer.name for layer in model.layers]
    assert {"image_dense1", "audio_dense1", "image_logits", "audio_logits", "fusion", "output"} <= set(names)


def test_single_branch_needs_no_fusion(real_data):
    image = branches.image_cnn((28, 28, 1), filters=(4,))
    model = mmzoo.compose(image, head=heads.regression(), hidden=())
    assert "fusion" not in [layer.name for layer in model.layers]
    assert model({"image": real_data.image((28, 28, 1))[:3]}).shape == (3, 1)


def test_compose_trains_on_real_batch_and_loss_falls(real_data):
    keras.utils.set_random_seed(0)
    model = mmzoo.compose(list(_pair()), head=heads.binary(), hidden=(16,))
    x = {"image": real_data.image((28, 28, 1))[:32], "audio": real_data.audio(1000)[:32]}
    y = real_data.labels_for(model)[:32]
    losses = model.fit(x, y, epochs=8, batch_size=32, verbose=0).history["loss"]
    assert losses[-1] < losses[0]


def test_compose_errors():
    image, audio = _pair()
    with pytest.raises(ValueError, match="non-empty"):
        mmzoo.compose([])
    with pytest.raises(ValueError, match="Branch"):
        mmzoo.compose([image, "audio"])
    with pytest.raises(ValueError, match="distinct"):
        mmzoo.compose([image, branches.image_cnn((28, 28, 1), filters=(4,), name="image")])
    with pytest.raises(ValueError, match="head"):
        mmzoo.compose([image, audio], head="softmax")
    with pytest.raises(ValueError, match="dropout"):
        mmzoo.compose([image, audio], dropout=2)
    with pytest.raises(ValueError, match="hidden"):
        mmzoo.compose([image, audio], hidden=(0,))
    with pytest.raises(ValueError, match="fusion"):
        mmzoo.compose([image, audio], fusion="mean")


def test_output_layer_carries_the_head():
    head = heads.multiclass(5, top_k=2, class_names=list("abcde"))
    model = mmzoo.compose(list(_pair()), head=head, hidden=(8,))
    assert isinstance(model.get_layer("output"), heads.HeadActivation)
    assert heads.from_model(model) == head


def test_large_model_warns_once_naming_its_largest_layer():
    # A flattened 224x224 feature map into Dense(256): ~25M weights (cheap to build; never trained).
    image = branches.image_cnn((224, 224, 3), filters=(8,), reduction="flatten", name="image")
    with pytest.warns(LargeModelWarning) as record:
        model = mmzoo.compose(image, head=heads.multiclass(10), hidden=(256,), name="big", compile=False)
    assert len(record) == 1
    message = str(record[0].message)
    assert model.count_params() > 20_000_000
    assert "'big'" in message and f"{model.count_params():,} weights" in message
    assert "'head_dense1' (Dense)" in message and "global pooling" in message


def test_small_model_does_not_warn(recwarn):
    mmzoo.compose(list(_pair()), head=heads.multiclass(5), hidden=(8,), compile=False)
    assert not [w for w in recwarn if issubclass(w.category, LargeModelWarning)]
