"""LocalResponseNormalization against the paper's formula."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vgg_keras import LocalResponseNormalization


def lrn_reference(a, size=5, k=2.0, alpha=1e-4, beta=0.75):
    """PAPER.md: b_c = a_c / (k + alpha * sum of squares over `size` neighbouring channels) ** beta."""
    channels = a.shape[-1]
    out = np.empty_like(a, dtype=np.float64)
    for c in range(channels):
        lo, hi = max(0, c - size // 2), min(channels, c + size // 2 + 1)
        out[..., c] = a[..., c] / (k + alpha * np.sum(a[..., lo:hi].astype(np.float64) ** 2, axis=-1)) ** beta
    return out


def test_matches_numpy_formula_with_krizhevsky_parameters():
    a = np.random.default_rng(0).uniform(0, 200, size=(2, 5, 6, 11)).astype("float32")
    np.testing.assert_allclose(LocalResponseNormalization()(a).numpy(), lrn_reference(a), rtol=1e-5)


def test_matches_tensorflow_lrn_which_does_not_divide_alpha_by_n():
    a = np.random.default_rng(1).uniform(-50, 200, size=(1, 4, 4, 16)).astype("float32")
    expected = tf.nn.local_response_normalization(a, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75)
    np.testing.assert_allclose(LocalResponseNormalization()(a).numpy(), expected.numpy(), rtol=1e-5)


def test_other_parameters_and_serialisation():
    layer = LocalResponseNormalization(size=3, bias=1.0, alpha=1e-3, beta=0.5, name="lrn")
    a = np.random.default_rng(2).uniform(0, 10, size=(1, 3, 3, 7)).astype("float32")
    np.testing.assert_allclose(layer(a).numpy(), lrn_reference(a, 3, 1.0, 1e-3, 0.5), rtol=1e-5)
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert (clone.size, clone.bias, clone.alpha, clone.beta, clone.name) == (3, 1.0, 1e-3, 0.5, "lrn")


@pytest.mark.parametrize("size", [0, 4, -1, 2.0])
def test_rejects_bad_window_sizes(size):
    with pytest.raises(ValueError, match="size must be a positive odd integer"):
        LocalResponseNormalization(size=size)
