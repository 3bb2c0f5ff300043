"""Data ops (decode, resize, crops, augmentation): eagerly and inside tf.data."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from vgg_keras.data import augment, crops
from vgg_keras.data.testing import encode, run_eager_and_in_dataset, smooth_image

IMAGE = smooth_image(30, 40, seed=1)


def _both(fn, *inputs):
    eager, in_dataset = run_eager_and_in_dataset(fn, *inputs)
    np.testing.assert_allclose(eager, in_dataset, atol=1e-4)
    return eager


def _seeds(n, start=0):
    return [tf.constant([start + i, 7], tf.int64) for i in range(n)]


# ------------------------------------------------------------------------- decode


@pytest.mark.parametrize("fmt", ["PNG", "BMP"])
def test_decode_lossless_formats_exact(fmt):
    out = _both(crops.decode_image, tf.constant(encode(IMAGE, fmt)))
    np.testing.assert_array_equal(out, IMAGE)


def _pil_decode(encoded: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"), np.float64)


@pytest.mark.parametrize(
    "fmt,mode",
    [("JPEG", None), ("GIF", None), ("JPEG", "L"), ("JPEG", "CMYK"), ("PNG", "L"), ("PNG", "RGBA"), ("PNG", "P")],
)
def test_decode_formats_and_colour_modes_to_rgb(fmt, mode):
    encoded = encode(IMAGE, fmt, mode=mode, quality=95)
    out = _both(crops.decode_image, tf.constant(encoded))
    assert out.shape == (30, 40, 3) and out.dtype == np.uint8
    # PIL is the reference decoder (IDCT and chroma upsampling differ by a few levels)
    assert np.abs(out - _pil_decode(encoded)).mean() < 4
    if mode == "L":
        np.testing.assert_array_equal(out[..., 0], out[..., 2])
    if mode == "CMYK":  # colours survive the CMYK round trip
        assert np.abs(out - IMAGE.astype(float)).mean() < 10


def test_decode_bad_channels():
    with pytest.raises(ValueError, match="channels"):
        crops.decode_image(tf.constant(b""), channels=4)


# ------------------------------------------------------------------------- resize


@pytest.mark.parametrize(
    "shape,size,expected",
    [
        ((30, 40), 24, (24, 32)),
        ((40, 30), 24, (32, 24)),
        ((30, 30), 50, (50, 50)),
        ((5, 9), 64, (64, 115)),  # small images are upscaled
    ],
)
def test_resize_smallest_side(shape, size, expected):
    image = np.full(shape + (3,), 77, np.uint8)
    out = _both(lambda x: crops.resize_smallest_side(x, size), image)
    assert out.shape == expected + (3,) and out.dtype == np.float32
    np.testing.assert_allclose(out, 77, atol=1e-3)


def test_resize_rejects_bad_size():
    with pytest.raises(ValueError, match="size"):
        crops.resize_smallest_side(IMAGE, 0)


# -------------------------------------------------------------------------- crops


def test_center_crop_matches_numpy():
    out = _both(lambda x: crops.center_crop(x, 20), IMAGE)
    np.testing.assert_array_equal(out, IMAGE[5:25, 10:30])


def test_center_crop_too_small_image_fails():
    with pytest.raises(tf.errors.InvalidArgumentError, match="smaller"):
        crops.center_crop(IMAGE, 31)


def test_multi_crop_grid_corners_and_flips():
    out = _both(lambda x: crops.multi_crop(x, 20, grid=5, flips=True), IMAGE)
    assert out.shape == (50, 20, 20, 3)
    np.testing.assert_array_equal(out[0], IMAGE[:20, :20])  # top-left corner
    np.testing.assert_array_equal(out[4], IMAGE[:20, 20:])  # top-right corner
    np.testing.assert_array_equal(out[24], IMAGE[10:, 20:])  # bottom-right corner
    np.testing.assert_array_equal(out[12], IMAGE[5:25, 10:30])  # centre
    np.testing.assert_array_equal(out[25:], out[:25, :, ::-1])  # flips second
    assert crops.multi_crop(IMAGE, 20, grid=3, flips=False).shape == (9, 20, 20, 3)
    np.testing.assert_array_equal(crops.multi_crop(IMAGE, 20, grid=1, flips=False)[0], IMAGE[5:25, 10:30])


# ---------------------------------------------------------------- scale and window


def test_sample_scale_distribution_eager_and_in_dataset():
    seeds = tf.stack(_seeds(3000))
    eager = np.array([int(augment.sample_scale(256, 263, s)) for s in seeds[:800]])
    in_ds = np.array(
        list(
            tf.data.Dataset.from_tensor_slices(seeds)
            .map(lambda s: augment.sample_scale(256, 263, s))
            .as_numpy_iterator()
        )
    )
    np.testing.assert_array_equal(eager, in_ds[:800])
    counts = np.bincount(in_ds - 256, minlength=8)
    assert in_ds.min() == 256 and in_ds.max() == 263 and len(counts) == 8
    # uniform: each of 8 values ~375 +- 4 sigma (sigma ~ 18)
    assert np.all(np.abs(counts - 375) < 75), counts
    assert int(augment.sample_scale(300, 300, seeds[0])) == 300


@pytest.mark.parametrize("bad", [(0, 10), (20, 10), (1.5, 10)])
def test_sample_scale_rejects_bad_range(bad):
    with pytest.raises(ValueError):
        augment.sample_scale(*bad)


@pytest.mark.parametrize(
    "shape,scale", [((375, 500), 256), ((500, 375), 512), ((64, 64), 224), ((10, 300), 256), ((224, 400), 224)]
)
def test_crop_window_inside_image_at_right_scale(shape, scale):
    h, w = shape
    windows = _eager_and_mapped(lambda s: augment.crop_window(tf.constant([h, w, 3]), scale, 224, s), _seeds(60), 2)
    oy, ox, wh, ww = windows.T
    expected = np.clip(round(224 * min(h, w) / scale), 1, min(h, w))
    assert np.all(wh == expected) and np.all(ww == expected)
    assert np.all(oy >= 0) and np.all(ox >= 0)
    assert np.all(oy + wh <= h) and np.all(ox + ww <= w)
    if w - expected > 10:  # positions spread over the whole range
        assert ox.min() < 0.25 * (w - expected) and ox.max() > 0.75 * (w - expected)
    # unknown static shape (inside tf.data with a dynamic image) works too
    _both(lambda hw: augment.crop_window(hw, scale, 224, _seeds(1)[0]), np.array([h, w]))


def test_crop_window_rejects_scale_below_crop():
    with pytest.raises(ValueError, match="scale"):
        augment.crop_window(tf.constant([100, 100]), 200, 224)


# ------------------------------------------------------------------- flip, colour


def _eager_and_mapped(fn, seeds, eager_count=5):
    """fn(seed) for every seed inside one tf.data map; the first few also eagerly."""
    mapped = np.stack(list(tf.data.Dataset.from_tensor_slices(tf.stack(seeds)).map(fn).as_numpy_iterator()))
    for i in range(eager_count):
        np.testing.assert_allclose(fn(seeds[i]), mapped[i], atol=1e-4)
    return mapped


def test_random_flip_statistics_eager_and_in_dataset():
    image = tf.constant(IMAGE)
    out = _eager_and_mapped(lambda s: augment.random_flip(image, s), _seeds(400))
    flipped = np.array([np.array_equal(o, IMAGE[:, ::-1]) for o in out])
    kept = np.array([np.array_equal(o, IMAGE) for o in out])
    assert np.all(flipped | kept)
    assert 0.4 < flipped.mean() < 0.6  # 400 draws: sigma ~ 0.025
    # batches: each image decides on its own
    batch = augment.random_flip(tf.stack([image] * 64), _seeds(1)[0]).numpy()
    per_image = [np.array_equal(b, IMAGE[:, ::-1]) for b in batch]
    assert 10 < sum(per_image) < 54


def test_pca_color_shift_statistics():
    grey = tf.fill((4, 5, 3), 128.0)
    out = _eager_and_mapped(lambda s: augment.pca_color_shift(grey, 0.1, s, clip=False), _seeds(300))
    deltas = out - 128.0
    # one shift per image, the same for every pixel
    np.testing.assert_allclose(deltas, np.broadcast_to(deltas[:, :1, :1], deltas.shape), atol=1e-4)
    batch = augment.pca_color_shift(tf.stack([grey] * 3000), 0.1, _seeds(1)[0], clip=False)
    deltas = np.concatenate([deltas[:, 0, 0], batch.numpy()[:, 0, 0] - 128.0])
    v, lam = augment.PCA_EIGVEC, augment.PCA_EIGVAL
    expected_cov = 255.0**2 * 0.1**2 * v @ np.diag(lam**2) @ v.T
    cov = np.cov(deltas.T)
    np.testing.assert_allclose(cov, expected_cov, atol=0.08 * expected_cov[0, 0])
    assert np.all(np.abs(deltas.mean(axis=0)) < 0.15)
    # the dominant direction is the first eigenvector (brightness)
    assert abs(np.linalg.eigh(cov)[1][:, -1] @ v[:, 0]) > 0.99


def test_pca_color_shift_clip_and_disable():
    white = np.full((2, 2, 3), 255.0, np.float32)
    shifted = augment.pca_color_shift(white, 2.0, _seeds(1)[0])
    assert float(tf.reduce_max(shifted)) <= 255.0 and float(tf.reduce_min(shifted)) >= 0.0
    np.testing.assert_array_equal(augment.pca_color_shift(IMAGE, 0.0, _seeds(1)[0]), IMAGE)
    with pytest.raises(ValueError, match="alpha_std"):
        augment.pca_color_shift(IMAGE, -1.0)
