"""`vgg_keras.describe` and the spec a model carries through `.keras` save/load."""

import dataclasses
import json
import warnings
import zipfile

import keras
import numpy as np
import pytest
from helpers import save_load_round_trip

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
    _check_stages(model, d)
    if d.head is None:
        assert d.fc_layers == () and d.predictions_layer is None and d.score_layers == ()
        return
    assert [model.get_layer(name).name for name in d.fc_layers] == list(d.fc_layers)
    assert model.get_layer(d.predictions_layer).output.shape[-1] == d.classes
    assert model.layers[-1].name == d.score_layers[-1] and d.score_layers[0] == d.predictions_layer
    assert (d.activation_layer is not None) == (d.head == "conv" and d.classifier_activation is not None)


def _check_stages(model, d):
    """`stages` groups the model's layers, in model order, into the stages a config unfreezes."""
    first = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert d.first_conv == first.name == d.conv_layers[0]
    staged = [name for names in d.stages.values() for name in names]
    assert staged == [layer.name for layer in model.layers if layer.name in staged]  # model order, no repeats
    assert list(d.stages)[:5] == list(models.STAGES[:5])
    for block, names in zip(models.STAGES, list(d.stages.values())[:5]):
        weighted = [model.get_layer(name) for name in names if model.get_layer(name).weights]
        assert weighted and all(name.startswith(f"{block}_") for name in names)
    assert d.pool_layers == tuple(names[-1] for names in list(d.stages.values())[:5])
    assert d.preprocessing_layer not in staged
    if d.batch_norm:
        assert {type(model.get_layer(name)) for name in d.stages["block3"]} >= {
            keras.layers.Conv2D,
            keras.layers.BatchNormalization,
            keras.layers.ReLU,
        }
    if d.head is None:
        assert "fc" not in d.stages and set(d.stages) <= set(models.STAGES) | {"head"}
        return
    assert set(d.fc_layers) <= set(d.stages["fc"]) and d.stages["head"] == d.score_layers
    assert d.stages["fc"][:2] == (("flatten", "fc1") if d.head == "dense" else ("fc1", d.stages["fc"][1]))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_describe_every_variant_and_its_old_layout(variant):
    config, kwargs, expected = VARIANTS[variant]
    model = _tiny(config, **kwargs)
    d = vgg_keras.describe(model)
    defaults = {
        "batch_norm": False,
        "lrn": False,
        "preprocessing": None,
        "data_format": "channels_last",
        "width_multiplier": 1 / 16,
        "classes": 5,
        "classifier_activation": "softmax",
        "fc_units": 16,
    }
    if kwargs.get("include_top", True) is False:
        defaults.update(classifier_activation=None, classes=None, fc_units=None)
    for field, value in {**defaults, **expected}.items():
        assert getattr(d, field) == value, field
    assert d.carried and isinstance(model, models.VGG) and d.input_shape == tuple(model.input_shape[1:])
    _check_layer_roles(model, d)
    # A model without the carried spec (built before it existed) describes the same, read from its layers.
    assert vgg_keras.describe(_old_layout(model)) == dataclasses.replace(d, carried=False)


def test_spec_survives_keras_round_trip(tmp_path):
    model = _tiny(
        "B",
        batch_norm=True,
        head="conv",
        base_size=32,
        classifier_activation=None,
        include_preprocessing=True,
        preprocessing="mean_rgb",
        dropout=0.5,
    )
    x = np.random.default_rng(0).uniform(0, 255, (1, 40, 48, 3)).astype("float32")
    restored = save_load_round_trip(model, tmp_path, x)  # same class, spec, weights and outputs
    with zipfile.ZipFile(tmp_path / f"{model.name}.keras") as archive:
        saved = json.loads(archive.read("config.json"))
    assert saved["config"]["vgg_spec"] == json.loads(json.dumps(model.spec.to_config()))  # plain data only
    assert isinstance(restored, models.VGG) and vgg_keras.describe(restored) == vgg_keras.describe(model)
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


def test_layer_stage_names_each_layer_of_every_head():
    cases = {
        "block1_conv1": "block1",
        "block3_bn2": "block3",
        "block5_pool": "block5",
        "block1_lrn": "block1",
        "flatten": "fc",
        "fc1": "fc",
        "fc2_dropout": "fc",
        "predictions": "head",
        "score_average": "head",
        "predictions_activation": "head",
        "avg_pool": "head",
        "head_dropout": "head",
        "preprocessing": None,
        "input_layer": None,
        "image": None,
    }
    assert {name: models.layer_stage(name) for name in cases} == cases


@pytest.mark.parametrize(
    "head,activation,names",
    [
        ("dense", "softmax", ["predictions"]),
        ("conv", "softmax", ["predictions", "score_average", "predictions_activation"]),
        ("conv", None, ["predictions", "score_average"]),
    ],
)
def test_the_builders_use_classifier_layers(head, activation, names):
    assert [layer.name for layer in models.classifier_layers(3, head, activation=activation)] == names
    built = _tiny("A", head=head, base_size=32, classifier_activation=activation, input_shape=(32, 32, 3))
    assert [layer.name for layer in built.layers][-len(names) :] == names
    assert vgg_keras.describe(built).score_layers == tuple(names)


def test_describe_a_pooled_classifier_on_the_features():
    """Fine-tuning's head="pooled" model: no fc layers, but a predictions layer to train and keep in float32."""
    layers = models.classifier_layers(3, "pooled", dropout=0.5)
    assert [layer.name for layer in layers] == ["avg_pool", "head_dropout", "predictions"]
    body = _tiny("vgg11_bn", include_top=False, input_shape=(32, 32, 3), include_preprocessing=True)
    x = body.output
    for layer in layers:
        x = layer(x)
    d = vgg_keras.describe(keras.Model(body.input, x))
    assert (d.head, d.classes, d.predictions_layer, d.score_layers) == (None, 3, "predictions", ("predictions",))
    assert d.stages["head"] == ("avg_pool", "head_dropout", "predictions") and "fc" not in d.stages
    assert d.preprocessing_layer == "preprocessing" and d.batch_norm


def test_classifier_layers_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="kind='pool'.*'dense', 'conv', 'pooled'"):
        models.classifier_layers(3, "pool")
