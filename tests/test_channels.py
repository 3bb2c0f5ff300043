"""Pretrained RGB weights for other input channel counts (vgg_keras.channels, timm's in_chans)."""

import keras
import numpy as np
import pytest
from helpers import save_load_round_trip

import vgg_keras
from vgg_keras import channels, preprocessing, weights

TINY = {"width_multiplier": 1 / 16, "fc_units": 32, "dropout": 0.0, "base_size": 32}


def _gray(seed=0, size=32):
    return np.random.default_rng(seed).uniform(0, 255, (2, size, size, 1)).astype("float32")


def test_adapt_input_conv_is_timms_rule():
    kernel = np.random.default_rng(0).normal(size=(3, 3, 3, 5)).astype("float32")
    np.testing.assert_array_equal(channels.adapt_input_conv(kernel, 3), kernel)
    np.testing.assert_allclose(channels.adapt_input_conv(kernel, 1), kernel.sum(axis=2, keepdims=True))
    four = channels.adapt_input_conv(kernel, 4)
    np.testing.assert_allclose(four, np.concatenate([kernel, kernel[:, :, :1]], axis=2) * 0.75, rtol=1e-6)
    seven = channels.adapt_input_conv(kernel, 7)
    np.testing.assert_allclose(seven, np.concatenate([kernel, kernel, kernel[:, :, :1]], axis=2) * 3 / 7, rtol=1e-6)
    with pytest.raises(ValueError, match="channels=0; allowed: a positive integer"):
        channels.adapt_input_conv(kernel, 0)
    with pytest.raises(ValueError, match=r"allowed: \(height, width, 3, filters\)"):
        channels.adapt_input_conv(kernel[:, :, :1], 1)


def test_extra_channels_get_the_mean_of_the_rgb_statistics():
    torch_mode = preprocessing.normalization("torch")
    mean, std = channels.channel_normalization(torch_mode, 4)
    assert mean[:3] == torch_mode.mean and mean[3] == pytest.approx(np.mean(torch_mode.mean))
    assert std[:3] == torch_mode.std and std[3] == pytest.approx(np.mean(torch_mode.std))
    layer = channels.ChannelPreprocessing("caffe", 4)
    x = np.random.default_rng(1).uniform(0, 255, (1, 4, 4, 4)).astype("float32")
    expected = np.concatenate([x[..., 2::-1], x[..., 3:]], axis=-1) - np.array(
        [103.939, 116.779, 123.68, np.mean([103.939, 116.779, 123.68])], "float32"
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected, rtol=1e-6)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_gray_model_equals_the_rgb_model_on_replicated_gray_with_equal_channel_statistics(batch_norm):
    inputs = keras.Input((32, 32, 3), name="image")
    normalised = preprocessing.preprocessing_layer("mean_rgb", mean=[110.0, 110.0, 110.0])(inputs)
    rgb = vgg_keras.build(
        "A", batch_norm=batch_norm, input_tensor=normalised, classes=5, classifier_activation=None, **TINY
    )
    for layer in rgb.layers:  # non-trivial BatchNorm statistics
        if isinstance(layer, keras.layers.BatchNormalization):
            rng = np.random.default_rng(len(layer.name))
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in layer.weights])
    gray_model = channels.adapt_model(rgb, 1)
    assert gray_model.input_shape == (None, 32, 32, 1)
    gray = _gray()
    np.testing.assert_allclose(
        gray_model.predict(gray, verbose=0), rgb.predict(np.repeat(gray, 3, axis=-1), verbose=0), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("mode", ["caffe", "torch"])
def test_per_channel_statistics_give_equality_away_from_the_border(tmp_path, mode):
    """With per-channel means the one-pixel ring of block1_conv1 differs (zero padding): what we promise is the rest."""
    source = vgg_keras.build("vgg11", include_top=False, input_shape=(32, 32, 3), **TINY)
    path = weights.save_weights(source, str(tmp_path / "rgb.weights.h5"), preprocessing=mode)
    kwargs = dict(weights=path, include_top=False, include_preprocessing=True, **TINY)
    rgb = vgg_keras.build("vgg11", input_shape=(32, 32, 3), **kwargs)
    gray_model = vgg_keras.build("vgg11", input_shape=(32, 32, 1), **kwargs)
    assert isinstance(gray_model.get_layer("preprocessing"), channels.ChannelPreprocessing)
    first = lambda m: keras.Model(m.input, m.get_layer("block1_conv1").output)  # noqa: E731
    gray = _gray(2)
    ours = first(gray_model).predict(gray, verbose=0)
    theirs = first(rgb).predict(np.repeat(gray, 3, axis=-1), verbose=0)
    np.testing.assert_allclose(ours[:, 1:-1, 1:-1], theirs[:, 1:-1, 1:-1], rtol=1e-4, atol=1e-4)
    assert np.abs(ours - theirs).max() > 1e-3  # the border really differs: the docs say so


def test_four_channel_model_from_rgb_weights_saves_and_reloads(tmp_path):
    source = vgg_keras.build("vgg11", include_top=False, input_shape=(32, 32, 3), **TINY)
    path = weights.save_weights(source, str(tmp_path / "rgb.weights.h5"), preprocessing="torch")
    rgbd = vgg_keras.build(
        "vgg11", weights=path, input_shape=(32, 32, 4), include_top=False, include_preprocessing=True, **TINY
    )
    np.testing.assert_allclose(
        rgbd.get_layer("block1_conv1").get_weights()[0],
        channels.adapt_input_conv(source.get_layer("block1_conv1").get_weights()[0], 4),
    )
    np.testing.assert_array_equal(
        rgbd.get_layer("block2_conv1").get_weights()[0], source.get_layer("block2_conv1").get_weights()[0]
    )
    save_load_round_trip(rgbd, tmp_path, np.random.default_rng(3).uniform(0, 255, (1, 32, 32, 4)).astype("float32"))


def test_adapt_model_needs_an_rgb_vgg():
    gray_model = vgg_keras.build("A", include_top=False, input_shape=(32, 32, 1), **TINY)
    with pytest.raises(ValueError, match="has no RGB 'block1_conv1'"):
        channels.adapt_model(gray_model, 4)
