"""The serving signatures' fast paths give the evaluation pipeline's results: the crop-window
resize against resize-then-crop, whole uint8 batches against one image at a time, and the
model run in inference mode (batch-norm statistics, no dropout).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from vgg_keras import models, preprocessing
from vgg_keras.data import crops
from vgg_keras.data.testing import encode, smooth_image
from vgg_keras.export import saved_model

CLASSES = 5


def _resize_then_crop(image, size: int, crop: int) -> np.ndarray:
    return crops.center_crop(crops.resize_smallest_side(image, size), crop).numpy()


@pytest.mark.parametrize(
    "shape, size, crop",
    [
        ((48, 64), 37, 32),
        ((90, 40), 37, 32),
        ((20, 30), 37, 32),
        ((37, 37), 37, 32),
        ((375, 500), 256, 224),
        ((33, 47), 32, 32),
    ],
    ids=["landscape", "portrait", "upscaled", "square", "photo", "crop-is-resize"],
)
def test_resize_center_crop_equals_resize_then_crop(shape, size, crop):
    pixels = np.stack([smooth_image(*shape, seed=seed) for seed in range(2)])
    expected = np.stack([_resize_then_crop(image, size, crop) for image in pixels])
    single = crops.resize_center_crop(tf.constant(pixels[0]), size, crop)
    batch = tf.function(crops.resize_center_crop)(tf.constant(pixels), size, crop)  # graph: dynamic shapes
    assert single.dtype == tf.float32 and single.shape == (crop, crop, 3)
    np.testing.assert_allclose(single.numpy(), expected[0], atol=1e-3)  # 0-255 scale; measured <= 3e-4
    np.testing.assert_allclose(batch.numpy(), expected, atol=1e-3)
    as_float = crops.resize_center_crop(tf.constant(pixels[1], tf.float32), size, crop)
    np.testing.assert_allclose(as_float.numpy(), expected[1], atol=1e-3)


def test_resize_smallest_side_takes_a_batch_of_one_size():
    pixels = np.stack([smooth_image(30, 45, seed=seed) for seed in range(3)])
    batch = crops.resize_smallest_side(tf.constant(pixels), 20).numpy()
    assert batch.shape == (3, 20, 30, 3)
    for image, resized in zip(pixels, batch):
        np.testing.assert_allclose(resized, crops.resize_smallest_side(image, 20).numpy(), atol=1e-4)


def test_resize_center_crop_bad_arguments():
    image = tf.zeros([40, 40, 3], tf.uint8)
    with pytest.raises(ValueError, match=r"size=30; allowed: an int >= crop_size \(32\)"):
        crops.resize_center_crop(image, 30, 32)
    with pytest.raises(ValueError, match="crop_size"):
        crops.resize_center_crop(image, 40, 0)
    with pytest.raises(ValueError, match=r"allowed: \[H, W, C\] or \[B, H, W, C\]"):
        crops.resize_center_crop(tf.zeros([40, 40]), 40, 32)


@pytest.fixture(scope="module")
def stochastic():
    """Batch norm and dropout: both behave differently when called with training=True."""
    return models.build(
        "A",
        batch_norm=True,
        dropout=0.5,
        width_multiplier=1 / 16,
        fc_units=32,
        base_size=32,
        classes=CLASSES,
        include_preprocessing=True,
        preprocessing="torch",
    )


def test_signatures_run_the_model_in_inference_mode(stochastic, tmp_path):
    loaded = tf.saved_model.load(saved_model.export_saved_model(stochastic, str(tmp_path), "bn", update_config=False))
    pixels = np.stack([smooth_image(40, 52, seed=seed) for seed in range(3)])
    expected = stochastic(tf.stack([_resize_then_crop(image, 37, 32) for image in pixels]), training=False).numpy()
    training = stochastic(tf.stack([_resize_then_crop(image, 37, 32) for image in pixels]), training=True).numpy()
    assert not np.allclose(training, expected, atol=1e-3)  # the test can tell the two modes apart
    for _ in range(2):
        from_pixels = loaded.signatures["predict_image_tensor"](images=tf.constant(pixels))["probabilities"]
        np.testing.assert_allclose(from_pixels.numpy(), expected, atol=1e-5)
    pngs = tf.constant([encode(image, "PNG") for image in pixels])
    from_bytes = loaded.signatures["serving_default"](images=pngs)["probabilities"]
    np.testing.assert_allclose(from_bytes.numpy(), expected, atol=1e-5)


def test_dense_mode_uint8_batch_equals_one_image_at_a_time(tmp_path):
    raw = models.build(
        "B", width_multiplier=1 / 16, fc_units=32, base_size=32, classes=CLASSES, classifier_activation=None
    )
    path = saved_model.export_saved_model(
        raw,
        str(tmp_path),
        "raw",
        mode="dense",
        preprocessing="caffe",
        resize_size=40,
        include_float_signature=False,
        update_config=False,
    )
    predict = tf.saved_model.load(path).signatures["predict_image_tensor"]
    pixels = np.stack([smooth_image(45, 60, seed=seed) for seed in range(3)])
    batch = predict(images=tf.constant(pixels))["probabilities"].numpy()
    one_by_one = np.concatenate([predict(images=tf.constant(image[np.newaxis]))["probabilities"] for image in pixels])
    np.testing.assert_allclose(batch, one_by_one, atol=1e-6)
    conv = models.to_fully_convolutional(raw)
    resized = crops.resize_smallest_side(tf.constant(pixels), 40)
    logits = conv(preprocessing.preprocess_input(resized, mode="caffe"), training=False)
    np.testing.assert_allclose(batch, tf.nn.softmax(logits).numpy(), atol=1e-5)
