"""Both image data formats: keras.applications' expectations, weights files, heads, features.

Every graph is built under "channels_last" and "channels_first" with TensorFlow. TensorFlow's
CPU kernels have no NCHW convolution, so the channels-first models run in one JAX subprocess
(`KERAS_BACKEND=jax`), loading the same weights files as the channels-last models run here,
whose outputs they must reproduce, transposed.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from keras.applications import vgg16
from safetensors.numpy import save_file
from test_weights import _torchvision_state, _write_legacy_h5

import vgg_keras
from vgg_keras import features, layers, models

FORMATS = ("channels_last", "channels_first")
APPS = ("VGG16", "VGG19")
TINY = dict(width_multiplier=1 / 16, fc_units=16, classes=10, base_size=32)


@pytest.fixture(params=FORMATS)
def data_format(request):
    """Sets Keras' global image data format for one test and restores it afterwards."""
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format(request.param)
    yield request.param
    keras.config.set_image_data_format(previous)


def _shape(height, width, channels, data_format):
    return (channels, height, width) if data_format == "channels_first" else (height, width, channels)


def _describe(model):
    """(name, class, output shape) per layer; Keras auto-names input and global pooling layers."""
    return [
        (
            type(layer).__name__
            if isinstance(
                layer, (keras.layers.InputLayer, keras.layers.GlobalMaxPooling2D, keras.layers.GlobalAveragePooling2D)
            )
            else layer.name,
            type(layer).__name__,
            tuple(layer.output.shape),
        )
        for layer in model.layers
    ]


def _to_last(x):
    """A channels-first map (B, C, H, W) in channels-last order; vectors unchanged."""
    return np.moveaxis(x, 1, -1) if x.ndim == 4 else x


# --------------------------------------------------------------------------- graphs (TensorFlow, both formats)


@pytest.mark.slow
@pytest.mark.parametrize("app", APPS)
def test_default_graph_is_keras_applications(data_format, app):
    ours, theirs = getattr(vgg_keras, app)(weights=None), getattr(keras.applications, app)(weights=None)
    assert _describe(ours) == _describe(theirs)
    assert ours.input_shape == theirs.input_shape == (None,) + _shape(224, 224, 3, data_format)


@pytest.mark.parametrize("app", APPS)
def test_small_top_graph_is_keras_applications(data_format, app):
    kwargs = dict(weights=None, input_shape=_shape(32, 32, 3, data_format), classes=7, classifier_activation=None)
    ours, theirs = getattr(vgg_keras, app)(**kwargs), getattr(keras.applications, app)(**kwargs)
    assert _describe(ours) == _describe(theirs)
    assert ours.layers[-1].activation.__name__ == theirs.layers[-1].activation.__name__ == "linear"
    assert (
        getattr(vgg_keras, app)(weights=None, input_shape=kwargs["input_shape"]).layers[-1].activation.__name__
        == "softmax"
    )


# The bodies differ by app; the pooling layers do not, so each pooling is checked on one of them.
@pytest.mark.parametrize("app,pooling", [("VGG16", None), ("VGG16", "avg"), ("VGG19", None), ("VGG19", "max")])
def test_notop_custom_input_shape_and_pooling_are_keras_applications(data_format, app, pooling):
    kwargs = dict(weights=None, include_top=False, input_shape=_shape(123, 123, 3, data_format), pooling=pooling)
    ours, theirs = getattr(vgg_keras, app)(**kwargs), getattr(keras.applications, app)(**kwargs)
    assert _describe(ours) == _describe(theirs)
    expected = (None, 512) if pooling else (None,) + _shape(3, 3, 512, data_format)
    assert ours.output_shape == expected


@pytest.mark.parametrize("builder", sorted(n for n in vgg_keras.__all__ if n.startswith("VGG")))
def test_every_builder_follows_keras_applications_expectations(data_format, builder):
    build = getattr(vgg_keras, builder)
    tiny = dict(weights=None, width_multiplier=1 / 16)
    channels_axis = 1 if data_format == "channels_first" else -1
    for channels in (1, 4):  # keras' test_application_notop_variable_input_channels
        model = build(include_top=False, input_shape=_shape(None, None, channels, data_format), **tiny)
        assert list(model.output.shape) == [None] + list(_shape(None, None, 32, data_format))
    # keras' test_application_notop_custom_input_tensor: a 4-channel input behind a strided Conv2D.
    inputs = keras.Input(_shape(200, 200, 4, data_format), name="custom_input")
    tensor = keras.layers.Conv2D(3, 2, strides=2)(inputs)
    model = build(include_top=False, input_tensor=tensor, **tiny)
    assert model.inputs[0] is inputs and model.output.shape[channels_axis] == 32
    assert model.output_shape == (None,) + _shape(3, 3, 32, data_format)
    assert build(include_top=False, pooling="max", **tiny).output_shape == (None, 32)
    top = build(input_shape=_shape(32, 32, 3, data_format), classes=5, fc_units=16, **tiny)
    assert top.output_shape == (None, 5) and top.layers[-1].activation.__name__ == "softmax"
    assert not [layer for layer in top.layers if isinstance(layer, keras.layers.Dropout)]
    assert {models.data_format_of(m) for m in (model, top)} == {data_format}


def test_input_shape_errors_name_the_data_format(data_format):
    with pytest.raises(ValueError, match=f"too small.*data_format='{data_format}'"):
        vgg_keras.VGG16(weights=None, include_top=False, input_shape=_shape(16, 64, 3, data_format))
    with pytest.raises(ValueError, match=f"channels=0.*data_format='{data_format}'.*allowed: a positive number"):
        vgg_keras.VGG16(weights=None, include_top=False, input_shape=_shape(64, 64, 0, data_format))
    with pytest.raises(ValueError, match="data_format='nhwc'; allowed"):
        vgg_keras.build("A", data_format="nhwc")


def test_serialisation_round_trip(data_format, tmp_path):
    model = vgg_keras.build("A-LRN", batch_norm=True, include_preprocessing=True, **TINY)
    config = keras.saving.serialize_keras_object(model)
    keras.config.set_image_data_format("channels_last" if data_format == "channels_first" else "channels_first")
    restored = keras.saving.deserialize_keras_object(config)  # the layers keep their format
    assert len(restored.weights) == len(model.weights)
    assert _describe(restored) == _describe(model)
    assert (
        restored.get_layer("block1_lrn").data_format
        == restored.get_layer("preprocessing").data_format
        == models.data_format_of(restored)
        == data_format
    )


def test_explicit_data_format_overrides_the_global_one(data_format):
    other = "channels_last" if data_format == "channels_first" else "channels_first"
    model = vgg_keras.build("B_bn", data_format=other, include_top=False, include_preprocessing=True, **TINY)
    assert models.data_format_of(model) == other
    assert model.get_layer("block1_bn1").axis == (1 if other == "channels_first" else -1)
    assert model.get_layer("preprocessing").data_format == other
    assert model.input_shape == (None,) + _shape(None, None, 3, other)


def test_to_data_format_round_trip_keeps_graph_and_weights(data_format):
    model = vgg_keras.build("C", head="conv", include_preprocessing=True, **TINY)
    other = "channels_last" if data_format == "channels_first" else "channels_first"
    twin = models.to_data_format(model, other)
    assert models.data_format_of(twin) == other and twin.input_shape == (None,) + _shape(None, None, 3, other)
    back = models.to_data_format(twin, data_format)
    assert _describe(back) == _describe(model)
    for a, b in zip(model.get_weights(), back.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert models.to_data_format(model, data_format) is model
    with pytest.raises(ValueError, match="data_format='NCHW'; allowed"):
        models.to_data_format(model, "NCHW")


def test_preprocess_input_follows_the_global_format_like_keras(data_format):
    x = np.random.default_rng(0).uniform(0, 255, (2,) + _shape(5, 6, 3, data_format)).astype("float32")
    np.testing.assert_array_equal(vgg_keras.preprocess_input(x), vgg16.preprocess_input(x.copy()))
    layer = vgg_keras.preprocessing_layer("torch")
    assert layer.data_format == data_format
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x)), vgg_keras.preprocess_input(x, mode="torch"), rtol=1e-6
    )


def test_lrn_normalises_across_the_channel_axis_of_either_format():
    a = np.random.default_rng(1).uniform(-50, 200, size=(2, 4, 5, 9)).astype("float32")
    last = layers.LocalResponseNormalization(data_format="channels_last")(a)
    first = layers.LocalResponseNormalization(data_format="channels_first")(np.moveaxis(a, -1, 1))
    np.testing.assert_allclose(_to_last(keras.ops.convert_to_numpy(first)), keras.ops.convert_to_numpy(last), rtol=1e-6)


def test_descriptors_of_a_channels_first_model_are_those_of_its_channels_last_twin(data_format):
    # The evaluation / Appendix B runner feeds (B, H, W, 3) batches; a channels-first model runs as its twin.
    last = vgg_keras.build("A", data_format="channels_last", include_preprocessing=True, **TINY)
    model = models.to_data_format(last, data_format)
    images = np.random.default_rng(2).uniform(0, 255, (2, 40, 48, 3)).astype("float32")
    expected = features.descriptor_runner(last).posteriors(images).numpy()
    np.testing.assert_allclose(features.descriptor_runner(model).posteriors(images).numpy(), expected, rtol=1e-5)


# --------------------------------------------------------------------------- channels_first runs (JAX)

# Each case: vgg_keras.build arguments (channels-last shapes), the weights file, the transform, the images.
CASES = {
    "keras3_h5_dense": (dict(config="vgg16"), "keras3.weights.h5", None, 32),
    "keras3_h5_as_conv_head": (dict(config="vgg16"), "keras3.weights.h5", "to_fully_convolutional", 32),
    "legacy_h5_dense": (dict(config="vgg19"), "legacy.h5", None, 32),
    "pth_dense_bn": (dict(config="vgg11_bn"), "vgg11_bn.pth", None, 32),
    "pth_notop_avg_preprocessing": (
        dict(
            config="vgg11_bn", include_top=False, pooling="avg", include_preprocessing=True, input_shape=(None, None, 3)
        ),
        "vgg11_bn.pth",
        None,
        48,
    ),
    "safetensors_score_map": (
        dict(config="vgg16_bn", head="conv", input_shape=(None, None, 3)),
        "vgg16_bn.safetensors",
        "score_map_model",
        64,
    ),
    "safetensors_conv_to_dense": (
        dict(config="vgg16_bn", head="conv", input_shape=(None, None, 3)),
        "vgg16_bn.safetensors",
        "to_dense",
        32,
    ),
    "lrn_features_block1": (dict(config="vgg11_lrn"), "lrn.weights.h5", "feature_extractor:block1_pool", 32),
    "lrn_features_fc2": (dict(config="vgg11_lrn"), "lrn.weights.h5", "feature_extractor:fc2", 32),
}
SMALL = dict(width_multiplier=1 / 8, fc_units=16, classes=10, base_size=32, classifier_activation=None)

JAX_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import keras, numpy as np
    import vgg_keras
    from vgg_keras import models
    from vgg_keras.tools import convert

    assert keras.backend.backend() == "jax"
    keras.config.set_image_data_format("channels_first")
    work = sys.argv[1]
    cases = json.load(open(f"{work}/cases.json"))
    images = np.load(f"{work}/images.npz")
    out = {}

    def nchw(x):
        return np.ascontiguousarray(np.moveaxis(x, -1, 1))

    def run(model, x):
        return keras.ops.convert_to_numpy(model(x, training=False))

    for name, case in cases.items():
        kwargs = dict(case["kwargs"])
        if "input_shape" in kwargs:
            kwargs["input_shape"] = tuple(kwargs["input_shape"][-1:] + kwargs["input_shape"][:-1])
        model = vgg_keras.build(weights=f"{work}/{case['file']}", **kwargs)
        transform = case["transform"] or ""
        if transform.startswith("feature_extractor:"):
            layer = transform.split(":")[1]
            model = keras.Model(model.input, vgg_keras.feature_extractor(model, [layer]).output[layer])
        elif transform:
            model = getattr(vgg_keras, transform)(model)
        out[name] = run(model, nchw(images[str(case["size"])]))

    # keras.applications' own channels-first VGG16 and ours, from one keras-applications notop file.
    x = nchw(images["32"])
    theirs = keras.applications.VGG16(weights=f"{work}/vgg16_notop.h5", include_top=False, input_shape=(3, 32, 32))
    ours = vgg_keras.VGG16(weights=f"{work}/vgg16_notop.h5", include_top=False, input_shape=(3, 32, 32))
    out["keras_applications_notop"], out["ours_notop"] = run(theirs, x), run(ours, x)

    # A channels-first .keras file round trip, and its channels-last twin.
    model = vgg_keras.build(
        "vgg13_bn", include_preprocessing=True, width_multiplier=1 / 8, fc_units=16, classes=10, base_size=32
    )
    model.save(f"{work}/cf.keras")
    out["saved"], out["restored"] = run(model, x), run(keras.models.load_model(f"{work}/cf.keras"), x)
    out["twin"] = run(models.to_data_format(model, "channels_last"), images["32"])

    # convert_weights under channels_first, compared with PyTorch on the source file.
    result = convert.convert_weights(f"{work}/vgg11.safetensors", "vgg11", f"{work}/converted/vgg11",
                                     width_multiplier=1 / 8, fc_units=16, classes=10, base_size=32)
    out["convert_diff"] = np.float32(result.max_abs_diff if result.max_abs_diff is not None else np.nan)
    np.savez(f"{work}/outputs.npz", **out)
    print("jax ok")
    """
)


def _write_files(work):
    """The weights files of every case, in each format, from channels-last models or state dicts."""
    import torch  # after TensorFlow is fine (torchvision would not be)

    vgg_keras.build("vgg16", input_shape=(32, 32, 3), **SMALL).save_weights(work / "keras3.weights.h5")
    _write_legacy_h5(vgg_keras.build("vgg19", input_shape=(32, 32, 3), **SMALL), work / "legacy.h5")
    vgg_keras.build("vgg11_lrn", input_shape=(32, 32, 3), **SMALL).save_weights(work / "lrn.weights.h5")
    torch.save({k: torch.from_numpy(v) for k, v in _torchvision_state("vgg11_bn").items()}, work / "vgg11_bn.pth")
    save_file(_torchvision_state("vgg16_bn", seed=1), str(work / "vgg16_bn.safetensors"))
    save_file(_torchvision_state("vgg11", seed=2), str(work / "vgg11.safetensors"))
    notop = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    _write_legacy_h5(notop, work / "vgg16_notop.h5")


def _expected(work, images):
    """The channels-last outputs of every case, computed here with TensorFlow."""
    expected = {}
    for name, (kwargs, file, transform, size) in CASES.items():
        kwargs = {"input_shape": (32, 32, 3), **SMALL, **kwargs}
        model = vgg_keras.build(weights=str(work / file), **kwargs)
        if transform and transform.startswith("feature_extractor:"):
            layer = transform.split(":")[1]
            model = keras.Model(model.input, vgg_keras.feature_extractor(model, [layer]).output[layer])
        elif transform:
            model = getattr(vgg_keras, transform)(model)
        expected[name] = keras.ops.convert_to_numpy(model(images[str(size)], training=False))
    notop = vgg_keras.VGG16(weights=str(work / "vgg16_notop.h5"), include_top=False, input_shape=(32, 32, 3))
    expected["keras_applications_notop"] = keras.ops.convert_to_numpy(notop(images["32"]))
    return expected


@pytest.fixture(scope="module")
def channels_first_runs(tmp_path_factory):
    """(expected channels-last outputs, channels-first outputs from JAX), once for all cases."""
    pytest.importorskip("jax")
    pytest.importorskip("torch")
    work = tmp_path_factory.mktemp("channels_first")
    rng = np.random.default_rng(0)
    images = {str(s): rng.uniform(0, 255, (2, s, s + 16, 3)).astype("float32") for s in (32, 48, 64)}
    images["32"] = images["32"][:, :, :32]  # the dense head needs its square base size
    np.savez(work / "images.npz", **images)
    _write_files(work)
    cases = {
        name: dict(kwargs={"input_shape": [32, 32, 3], **SMALL, **kwargs}, file=file, transform=transform, size=size)
        for name, (kwargs, file, transform, size) in CASES.items()
    }
    for case in cases.values():
        case["kwargs"]["input_shape"] = list(case["kwargs"]["input_shape"])
    (work / "cases.json").write_text(json.dumps(cases))
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT, str(work)], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0 and "jax ok" in result.stdout, result.stderr[-4000:]
    return _expected(work, images), dict(np.load(work / "outputs.npz"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_channels_first_model_gives_the_channels_last_outputs_transposed(channels_first_runs, case):
    expected, got = channels_first_runs
    assert got[case].shape == (expected[case].shape[:1] + expected[case].shape[-1:] + expected[case].shape[1:-1])
    np.testing.assert_allclose(_to_last(got[case]), expected[case], rtol=1e-4, atol=1e-4)


def test_keras_applications_channels_first_loads_the_same_file_as_ours(channels_first_runs):
    expected, got = channels_first_runs
    np.testing.assert_allclose(got["ours_notop"], got["keras_applications_notop"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_to_last(got["ours_notop"]), expected["keras_applications_notop"], rtol=1e-4, atol=1e-3)


def test_channels_first_keras_file_round_trip_and_twin(channels_first_runs):
    _, got = channels_first_runs
    np.testing.assert_allclose(got["restored"], got["saved"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got["twin"], got["saved"], rtol=1e-4, atol=1e-5)


def test_convert_weights_under_channels_first_matches_pytorch(channels_first_runs):
    _, got = channels_first_runs
    assert float(got["convert_diff"]) < 1e-3
