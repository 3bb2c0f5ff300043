"""Preprocessing tied to the weights: keras parity, no in-place edits, tensors, layer, class names."""

import ast
import os
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import save_load_round_trip
from keras.applications import imagenet_utils, vgg16

import vgg_keras
from vgg_keras import preprocessing as P

SHAPES = [
    ((2, 6, 5, 3), "channels_last"),
    ((6, 5, 3), "channels_last"),
    ((2, 3, 6, 5), "channels_first"),
    ((3, 6, 5), "channels_first"),
]


def _images(shape, dtype="float32", seed=0):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64", "uint8"])
@pytest.mark.parametrize("shape,data_format", SHAPES)
def test_default_is_keras_vgg16_preprocess_input_bit_for_bit_and_not_in_place(dtype, shape, data_format):
    x = _images(shape, dtype)
    original = x.copy()
    ours = P.preprocess_input(x, data_format=data_format)
    theirs = vgg16.preprocess_input(x.copy(), data_format=data_format)
    np.testing.assert_array_equal(x, original)
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("mode", ["caffe", "torch"])
@pytest.mark.parametrize("shape,data_format", SHAPES)
def test_tensor_input_matches_keras_and_numpy(mode, shape, data_format):
    x = _images(shape)
    theirs = imagenet_utils.preprocess_input(tf.constant(x), mode=mode, data_format=data_format)
    ours = P.preprocess_input(tf.constant(x), mode=mode, data_format=data_format)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal(ours.numpy(), P.preprocess_input(x, mode=mode, data_format=data_format))


def test_torch_numpy_matches_keras_torch_mode():
    x = _images((2, 4, 4, 3))
    np.testing.assert_array_equal(
        P.preprocess_input(x, mode="torch"), imagenet_utils.preprocess_input(x.copy(), mode="torch")
    )


def test_inside_tf_data_graph():
    x = _images((4, 5, 5, 3), "uint8")
    ds = tf.data.Dataset.from_tensor_slices(x).map(lambda image: P.preprocess_input(image, mode="torch")).batch(4)
    np.testing.assert_allclose(next(iter(ds)).numpy(), P.preprocess_input(x, mode="torch"), rtol=1e-6)


def test_mean_rgb_subtracts_the_dataset_mean_only():
    x = _images((2, 3, 3, 3))
    np.testing.assert_allclose(P.preprocess_input(x, mode="mean_rgb"), x - np.float32(P.IMAGENET_MEAN_RGB), rtol=1e-6)
    np.testing.assert_allclose(P.preprocess_input(x, mode="mean_rgb", mean=[10, 20, 30]), x - [10, 20, 30], rtol=1e-6)


def test_mode_follows_the_weights():
    x = _images((1, 4, 4, 3))
    np.testing.assert_array_equal(
        P.preprocess_input(x, weights="imagenet-torchvision"), P.preprocess_input(x, mode="torch")
    )
    np.testing.assert_array_equal(P.preprocess_input(x, weights="imagenet", arch="vgg16"), P.preprocess_input(x))
    np.testing.assert_array_equal(
        P.preprocess_input(x, weights="imagenet", arch="vgg11"), P.preprocess_input(x, mode="torch")
    )
    with pytest.raises(ValueError, match="arch="):
        P.preprocess_input(x, weights="imagenet")


def test_a_weights_entry_carries_its_preprocessing_without_arch():
    x = _images((1, 4, 4, 3))
    for entry in vgg_keras.list_weights():
        expected = P.preprocess_input(x, mode=entry.preprocessing)
        np.testing.assert_array_equal(P.preprocess_input(x, weights=entry), expected)
        assert entry.normalization == P.normalization(entry.preprocessing)
    modes = {entry.source: entry.preprocessing for entry in vgg_keras.list_weights("vgg16")}
    assert modes == {"keras": "caffe", "torchvision": "torch"}


def test_normalization_is_a_leaf_and_old_modes_name_warns():
    import subprocess
    import sys

    # The leaf imports neither preprocessing (Keras) nor weights (h5py), so neither imports the other at load.
    # (A plain `import vgg_keras` registers the model classes with Keras; the recipes' deferral shows the leaf alone.)
    code = (
        "import sys, vgg_keras.normalization; "
        "print(sorted(m for m in sys.modules if m.startswith(('vgg_keras.', 'keras', 'h5py', 'tensorflow'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "VGG_KERAS_DEFER_KERAS": "1"},
    )
    loaded = set(ast.literal_eval(out.stdout))
    assert "vgg_keras.normalization" in loaded
    assert not loaded & {"keras", "h5py", "tensorflow", "vgg_keras.preprocessing", "vgg_keras.weights"}, loaded
    with pytest.warns(DeprecationWarning, match="PREPROCESSING_MODES"):
        assert P.MODES is P.PREPROCESSING_MODES


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(mode="tf"), "mode='tf'"),
        (dict(mode="caffe", mean=[1, 2, 3]), "only allowed with mode='mean_rgb'"),
        (dict(mode="mean_rgb", mean=[1, 2]), "three finite numbers"),
        (dict(data_format="nhwc"), "data_format='nhwc'"),
        (dict(weights="imagenet-keras", mode="torch"), "not both"),
        (dict(weights="imagenet-nope"), "imagenet-torchvision"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        P.preprocess_input(_images((1, 4, 4, 3)), **kwargs)


def test_wrong_channel_count():
    with pytest.raises(ValueError, match="3 channels"):
        P.preprocess_input(np.zeros((1, 4, 4, 4)))


@pytest.mark.parametrize("mode", ["caffe", "torch", "mean_rgb"])
def test_layer_matches_function_and_survives_keras_save(tmp_path, mode):
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, P.preprocessing_layer(mode)(inputs))
    x = _images((2, 8, 8, 3))
    np.testing.assert_allclose(model.predict(x, verbose=0), P.preprocess_input(x, mode=mode), rtol=1e-6, atol=1e-6)
    reloaded = save_load_round_trip(model, tmp_path, x, rtol=0, atol=0)
    assert reloaded.get_layer("preprocessing").mode == mode


def test_include_preprocessing_bakes_the_mode_of_the_weights():
    kwargs = dict(width_multiplier=0.125, include_top=False, input_shape=(32, 32, 3))
    model = vgg_keras.build("vgg11", include_preprocessing=True, preprocessing="torch", **kwargs)
    assert model.layers[1].name == "preprocessing" and model.layers[1].mode == "torch"
    plain = vgg_keras.build("vgg11", **kwargs)
    plain.set_weights(model.get_weights())
    x = _images((2, 32, 32, 3))
    np.testing.assert_allclose(
        model.predict(x, verbose=0), plain.predict(P.preprocess_input(x, mode="torch"), verbose=0), rtol=1e-5, atol=1e-6
    )
    assert vgg_keras.build("vgg11", include_preprocessing=True, **kwargs).get_layer("preprocessing").mode == "caffe"
    with pytest.raises(ValueError, match="include_preprocessing=True"):
        vgg_keras.build("vgg11", preprocessing="torch", **kwargs)


def _tfds_dir():
    import tensorflow_datasets

    return pathlib.Path(tensorflow_datasets.__file__).parent / "datasets"


def test_class_names_are_the_tfds_order_and_names():
    classes = P.imagenet_classes()
    assert [wnid for wnid, _ in classes] == (_tfds_dir() / "imagenet2012" / "labels.txt").read_text().split()
    tree = ast.parse((_tfds_dir() / "siscore" / "labels.py").read_text())
    names = next(
        ast.literal_eval(n.value)
        for n in tree.body
        if isinstance(n, ast.Assign) and n.targets[0].id == "IMAGENET_LABELS_LIST"
    )
    assert [name for _, name in classes] == names


def test_decode_predictions():
    preds = np.zeros((2, 1000), "float32")
    preds[0, [0, 517, 134]] = [0.5, 0.3, 0.2]
    preds[1, 999] = 1.0
    decoded = P.decode_predictions(preds, top=3)
    assert decoded[0] == [
        ("n01440764", "tench", 0.5),
        ("n03126707", "crane (machine)", pytest.approx(0.3)),
        ("n02012849", "crane (bird)", pytest.approx(0.2)),
    ]
    assert decoded[1][0][:2] == ("n15075141", "toilet tissue")
    assert len(P.decode_predictions(tf.constant(preds))[1]) == 5
    with pytest.raises(ValueError, match=r"\(batch, 1000\)"):
        P.decode_predictions(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="top=0"):
        P.decode_predictions(preds, top=0)
