"""`vgg_keras.describe` and the spec a model carries through `.keras` save/load."""

import dataclasses
import json
import warnings
import zipfile

import keras
import numpy as np
import pytest

import vgg_keras
from vgg_keras import models
from vgg_keras.preprocessing import Preprocessing

TINY = {"width_multiplier": 1 / 16, "fc_units": 16, "classes": 5}

# (config, build arguments, expected description fields)
VARIANTS = {
    "A-dense": ("A", {"input_shape": (32, 32, 3)}, {"config": "A", "head": "dense", "base_size": 32}),
    "A-LRN": ("A-LRN", {"input_shape": (32, 32, 3)}, {"config": "A-LRN", "lrn": True}),
    "C-1x1": ("vgg16_c", {"input_shape": (32, 32, 3)}, {"config": "C"}),
    "D-BN": ("vgg16_bn", {"input_shape": (32, 32, 3)}, {"config": "D", "batch_norm": True}),
    "E-conv-logits": (
        "E",
        {"head": "conv", "base_size": 32, "classifier_activation": None, "dropout": 0.5},
        {"config": "E", "head": "conv", "base_size": 32, "classifier_activation": None},
    ),
    "B-conv-softmax": ("B", {"head": "conv", "base_size": 64}, {"head": "conv", "base_size": 64}),
    "D-notop-avg": ("D", {"include_top": False, "pooling": "avg"}, {"head": None, "classes": None, "pooling": "avg"}),
    "A-notop": ("A", {"include_top": False}, {"head": None, "fc_units": None, "pooling": None}),
    "A-torch": (
        "A",
        {"input_shape": (32, 32, 3), "include_preprocessing": True, "preprocessing": "torch"},
        {"preprocessing": "torch", "preprocessing_layer": "preprocessing"},
    ),
    "B-BN-channels-first": (
        "vgg13_bn",
        {"data_format": "channels_first", "input_shape": (3, 32, 32), "include_preprocessing": True},
        {"data_format": "channels_first", "batch_norm": True, "preprocessing": "caffe"},
    ),
}


def _tiny(config, **kwargs):
    return vgg_keras.build(config, **{**TINY, **kwargs})


def _old_layout(model):
    """The model as vgg_keras built it before the spec was carried: a plain functional model."""
    return keras.Model(model.input, model.output, name=model.name)


def _check_layer_roles(model, d):
    """Every name `describe` gives is a layer of the model doing what the name says."""
    body_convs = [layer.name for layer in model.layers if layer.name.startswith("block") and "_conv" in layer.name]
    assert list(d.conv_layers) == body_convs and d.last_conv == body_convs[-1]
    for layer_name in d.relu_layers.values():
        layer = model.get_layer(layer_name)
        assert isinstance(layer, keras.layers.ReLU) or layer.activation.__name__ == "relu"
    assert len(d.relu_layers) == len(d.conv_layers)
    assert all(isinstance(model.get_layer(name), keras.layers.MaxPooling2D) for name in d.pool_layers)
    assert d.features_layer == d.pool_layers[-1] and len(d.pool_layers) == 5
    if d.preprocessing is None:
        assert d.preprocessing_layer is None and not any(isinstance(la, Preprocessing) for la in model.layers)
    else:
        assert model.get_layer(d.preprocessing_layer).mode == d.preprocessing
    if d.head is None:
        assert d.fc_layers == () and d.predictions_layer is None and d.score_layers == ()
        return
    assert [model.get_layer(name).name for name in d.fc_layers] == list(d.fc_layers)
    assert model.get_layer(d.predictions_layer).output.shape[-1] == d.classes
    assert model.layers[-1].name == d.score_layers[-1] and d.score_layers[0] == d.predictions_layer
    assert (d.activation_layer is not None) == (d.head == "conv" and d.classifier_activation is not None)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_describe_every_variant_and_its_old_layout(variant):
    config, kwargs, expected = VARIANTS[variant]
    model = _tiny(config, **kwargs)
    d = vgg_keras.describe(model)
    defaults = {"batch_norm": False, "lrn": False, "preprocessing": None, "data_format": "channels_last",
                "width_multiplier": 1 / 16, "classes": 5, "classifier_activation": "softmax", "fc_units": 16}
    if kwargs.get("include_top", True) is False:
        defaults.update(classifier_activation=None, classes=None, fc_units=None)
    for field, value in {**defaults, **expected}.items():
        assert getattr(d, field) == value, field
    assert d.carried and isinstance(model, models.VGG) and d.input_shape == tuple(model.input_shape[1:])
    _check_layer_roles(model, d)
    # A model without the carried spec (built before it existed) describes the same, read from its layers.
    assert vgg_keras.describe(_old_layout(model)) == dataclasses.replace(d, carried=False)


def test_spec_survives_keras_round_trip(tmp_path):
    model = _tiny("B", batch_norm=True, head="conv", base_size=32, classifier_activation=None,
                  include_preprocessing=True, preprocessing="mean_rgb", dropout=0.5)
    with zipfile.ZipFile(_save(model, tmp_path / "m.keras")) as archive:
        saved = json.loads(archive.read("config.json"))
    assert saved["config"]["vgg_spec"] == json.loads(json.dumps(model.spec.to_config()))  # plain data only
    restored = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(restored, models.VGG) and restored.spec == model.spec
    assert vgg_keras.describe(restored) == vgg_keras.describe(model)
    x = np.random.default_rng(0).uniform(0, 255, (1, 40, 48, 3)).astype("float32")
    np.testing.assert_allclose(restored(x), model(x), rtol=1e-5, atol=1e-6)
    dense = vgg_keras.to_dense(restored)  # conversions read the carried spec
    assert vgg_keras.describe(dense).head == "dense" and dense.input_shape == (None, 32, 32, 3)
    assert vgg_keras.describe(dense).carried and dense.spec.preprocessing == "mean_rgb"


def _save(model, path):
    model.save(path)
    return path


def test_model_spec_is_plain_data():
    spec = _tiny("A-LRN", head="conv", base_size=32, include_preprocessing=True).spec
    fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}
    assert not any(isinstance(value, keras.layers.Layer) for value in fields.values())
    assert spec.preprocessing == "caffe" and spec.config == "A-LRN"
    assert models.ModelSpec.from_config(json.loads(json.dumps(spec.to_config()))) == spec


def test_old_layout_file_loads_and_describes(tmp_path):
    new = _tiny("vgg11_bn", head="conv", base_size=32, include_preprocessing=True, preprocessing="torch")
    old = _old_layout(new)
    with zipfile.ZipFile(_save(old, tmp_path / "old.keras")) as archive:
        saved = json.loads(archive.read("config.json"))
    assert saved["class_name"] == "Functional" and "vgg_spec" not in saved["config"]  # today's main wrote this
    loaded = keras.saving.load_model(tmp_path / "old.keras")
    d = vgg_keras.describe(loaded)
    assert not d.carried and d.spec == new.spec  # the name is the same; kernel_initializer is not compared
    assert (d.config, d.head, d.base_size, d.preprocessing, d.batch_norm) == ("A", "conv", 32, "torch", True)
    x = np.random.default_rng(1).uniform(0, 255, (1, 40, 40, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x), new(x), rtol=1e-5, atol=1e-6)
    dense = vgg_keras.to_dense(loaded)
    assert vgg_keras.describe(dense).carried and dense.input_shape == (None, 32, 32, 3)


def test_normalisation_in_front_of_input_tensor_is_described(tmp_path):
    """The trainer's layout: `build(input_tensor=Preprocessing(...)(image))`."""
    image = keras.Input((32, 32, 3), name="image")
    normalised = Preprocessing("mean_rgb", mean=[1.0, 2.0, 3.0], name="normalise")(image)
    model = _tiny("A", input_tensor=normalised)
    d = vgg_keras.describe(model)
    assert (d.preprocessing, d.spec.preprocessing_mean) == ("mean_rgb", (1.0, 2.0, 3.0))
    assert d.preprocessing_layer == "normalise"
    restored = keras.saving.load_model(_save(model, tmp_path / "t.keras"))
    assert vgg_keras.describe(restored).spec == d.spec
    conv = vgg_keras.to_fully_convolutional(restored)  # the normalisation moves inside, as before
    assert vgg_keras.describe(conv).spec.preprocessing_mean == (1.0, 2.0, 3.0)
    x = np.random.default_rng(2).uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(conv(x), model([x]), rtol=1e-5, atol=1e-6)  # input_tensor: a list of inputs


def test_describe_rejects_other_models():
    with pytest.raises(TypeError, match="keras.Model"):
        vgg_keras.describe("vgg16")
    other = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="block1_conv1"):
        vgg_keras.describe(other)


def test_head_of_is_a_deprecated_alias():
    model = _tiny("A", head="conv", base_size=32, classifier_activation=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert models.head_of(model) == ("conv", 32, None)
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    with pytest.raises(ValueError, match="include_top=False"):
        models.head_of(_tiny("A", include_top=False))
