"""TFLite conversion in every mode, checked by the parity report against a trained model."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from vgg_keras import data, models
from vgg_keras.data import sources
from vgg_keras.export import tflite
from vgg_keras.export.signatures import default_resize_size

CLASSES = 4
_COLORS = np.array([[255, 40, 40], [40, 255, 40], [40, 40, 255], [255, 255, 40]], "float32")


def _squares(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """32-px RGB [0, 255] images: a coloured square (the class) at a random place on noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    images = rng.uniform(0, 100, (n, 32, 32, 3)).astype("float32")
    for image, label, (row, col) in zip(images, labels, rng.integers(0, 20, (n, 2))):
        image[row : row + 12, col : col + 12] = _COLORS[label] * rng.uniform(0.5, 1.0)
    return images, labels


@pytest.fixture(scope="module")
def trained():
    """A small VGG-A trained for a few epochs (normalisation baked in, like the quick start)."""
    keras.utils.set_random_seed(0)
    model = models.build(
        "A",
        width_multiplier=1 / 8,
        fc_units=512,
        base_size=32,
        classes=CLASSES,
        include_preprocessing=True,
        preprocessing="torch",
        dropout=0.0,
    )
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    images, labels = _squares(512, seed=0)
    model.fit(images, labels, epochs=6, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def held_out(trained):
    images, labels = _squares(100, seed=1)
    accuracy = np.mean(trained.predict(images, verbose=0).argmax(-1) == labels)
    assert accuracy > 0.8, f"the test model did not learn ({accuracy:.2f}); the int8 agreement would mean little"
    return images


@pytest.fixture(scope="module")
def calibration_source(tmp_path_factory):
    """A folder of 40x48 JPEGs (not the model's 32 px), so the images must be resized and cropped."""
    root = tmp_path_factory.mktemp("calibration")
    images, labels = _squares(24, seed=2)
    for index, (image, label) in enumerate(zip(images, labels)):
        folder = root / f"class{label}"
        folder.mkdir(exist_ok=True)
        Image.fromarray(image.astype(np.uint8)).resize((40, 48)).save(folder / f"{index}.jpg")
    return sources.folder_source(str(root))


@pytest.fixture(scope="module")
def calibration(calibration_source):
    """Representative images through the input pipeline (folder source, centre crops)."""
    return tflite.representative_images(calibration_source, image_size=32, num_images=20)


@pytest.fixture(scope="module")
def reports(trained, held_out, calibration, tmp_path_factory):
    directory = tmp_path_factory.mktemp("tflite")
    results = {}
    for quantization in tflite.QUANTIZATIONS:
        path = tflite.export_tflite(
            trained,
            str(directory / f"{quantization}.tflite"),
            quantization=quantization,
            representative_dataset=calibration,
        )
        results[quantization] = tflite.tflite_parity_report(trained, path, held_out, verbose=False)
    return results


def test_representative_images_come_from_the_pipeline(calibration_source, calibration):
    assert calibration.shape == (20, 32, 32, 3) and calibration.dtype == np.float32
    # Exactly the evaluation pipeline's centre crops at the serving resize (the default of exported models).
    scale = default_resize_size(32)
    expected = data.eval_dataset(calibration_source, batch_size=7, scale=scale, crop_size=32).unbatch().take(20)
    np.testing.assert_array_equal(calibration, np.stack([image for image, _ in expected.as_numpy_iterator()]))
    other = tflite.representative_images(calibration_source, image_size=32, resize_size=48, num_images=20)
    assert np.abs(other - calibration).max() > 10  # resize_size reaches the pipeline


def test_float_modes_match_keras(reports):
    assert reports["float32"]["max_abs_diff"] < 1e-4
    assert reports["float32"]["top1_agreement"] == 1.0
    assert reports["float16"]["max_abs_diff"] < 1e-2
    assert reports["float16"]["tflite_bytes"] <= 0.55 * reports["float32"]["tflite_bytes"]


@pytest.mark.parametrize("quantization", ["dynamic_int8", "int8"])
def test_int8_modes_agree_and_shrink(reports, quantization):
    report = reports[quantization]
    assert report["top1_agreement"] >= 0.95
    assert report["mean_abs_diff"] < 0.02
    assert report["tflite_bytes"] <= 0.30 * reports["float32"]["tflite_bytes"]


def test_full_integer_model_has_int8_input_and_output(reports):
    interpreter = tflite._interpreter(reports["int8"]["tflite_path"])
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    assert list(interpreter.get_input_details()[0]["shape"]) == [1, 32, 32, 3]


def test_report_saved_as_json(reports):
    for report in reports.values():
        with open(report["report_path"]) as f:
            assert json.load(f) == report
        assert report["num_images"] == 100 and report["tflite_ms_per_image"] > 0
        assert report["size_ratio"] == report["tflite_bytes"] / report["keras_float32_bytes"]


def test_model_without_preprocessing_layer_gets_it_prepended(tmp_path, held_out):
    raw = models.build(
        "A", width_multiplier=1 / 16, fc_units=32, base_size=32, classes=CLASSES, input_shape=(32, 32, 3)
    )
    path = tflite.export_tflite(raw, str(tmp_path / "raw.tflite"), preprocessing="caffe")
    report = tflite.tflite_parity_report(raw, path, held_out[:10], preprocessing="caffe", verbose=False)
    assert report["max_abs_diff"] < 1e-4
    from vgg_keras import preprocessing

    expected = raw.predict(preprocessing.preprocess_input(held_out[:10], mode="caffe"), verbose=0)
    actual, _ = tflite.run_tflite(path, held_out[:10])
    np.testing.assert_allclose(actual, expected, atol=1e-4)


def test_bad_arguments(trained, tmp_path):
    with pytest.raises(ValueError, match="quantization='int4'"):
        tflite.export_tflite(trained, str(tmp_path / "a.tflite"), quantization="int4")
    with pytest.raises(ValueError, match="representative_dataset"):
        tflite.export_tflite(trained, str(tmp_path / "a.tflite"), quantization="int8")
    existing = tmp_path / "exists.tflite"
    existing.write_bytes(b"x")
    with pytest.raises(ValueError, match="exists"):
        tflite.export_tflite(trained, str(existing))
    assert os.listdir(tmp_path) == ["exists.tflite"]


def test_logits_model_exports_probabilities_as_the_saved_model_does(tmp_path, held_out):
    """classifier_activation=None: TFLite and the SavedModel both serve the soft-max of the logits."""
    from vgg_keras.export import saved_model

    keras.utils.set_random_seed(1)
    logits_model = models.build(
        "A",
        width_multiplier=1 / 16,
        fc_units=32,
        base_size=32,
        classes=CLASSES,
        include_preprocessing=True,
        preprocessing="torch",
        dropout=0.0,
        classifier_activation=None,
    )
    images = held_out[:8]
    logits = logits_model.predict(images, verbose=0)
    expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    path = tflite.export_tflite(logits_model, str(tmp_path / "logits.tflite"))
    actual, _ = tflite.run_tflite(path, images)
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    assert tflite.tflite_parity_report(logits_model, path, images, verbose=False)["max_abs_diff"] < 1e-5
    version_dir = saved_model.export_saved_model(logits_model, str(tmp_path / "savedmodels"), "logits")
    served = tf.saved_model.load(version_dir).signatures["predict_float"](inputs=tf.constant(images))
    np.testing.assert_allclose(served["probabilities"].numpy(), actual, atol=1e-5)
