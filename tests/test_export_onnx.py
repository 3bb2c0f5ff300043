"""ONNX export of every kind of vgg_keras classifier, run through ONNX Runtime against Keras.

The parity tests run for both converters: "tf2onnx" in this process and "torch" in a
subprocess on Keras' torch backend (~15 s each here, mostly its imports).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import keras
import numpy as np
import onnxruntime
import pytest
from helpers import ROOT

from vgg_keras import models, preprocessing
from vgg_keras.export import onnx as onnx_export
from vgg_keras.export import tflite

CLASSES = 4
NARROW = dict(width_multiplier=1 / 16, fc_units=32, base_size=32, classes=CLASSES)
CONVERTERS = ["tf2onnx", "torch"]
# The torch route's ~15 s subprocess, marked slow where its tf2onnx twin and the fast torch tests cover the rest.
CONVERTERS_TORCH_SLOW = ["tf2onnx", pytest.param("torch", marks=pytest.mark.slow)]


def _images(n: int, height: int = 32, width: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, height, width, 3)).astype("float32")


def _inputs_and_outputs(path: str) -> tuple[list, list]:
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return ([(i.name, i.shape) for i in session.get_inputs()], [(o.name, o.shape) for o in session.get_outputs()])


@pytest.fixture(scope="module")
def conv_model():
    """A conv-head VGG-A with its normalisation baked in."""
    keras.utils.set_random_seed(0)
    return models.build("A", head="conv", include_preprocessing=True, preprocessing="torch", **NARROW)


@pytest.fixture(scope="module", params=CONVERTERS)
def conv_head(conv_model, tmp_path_factory, request):
    """The conv-head model and its ONNX export at any image size, by each converter."""
    path = str(tmp_path_factory.mktemp("onnx") / f"conv_{request.param}.onnx")
    return conv_model, onnx_export.export_onnx(conv_model, path, converter=request.param)


@pytest.mark.parametrize("converter", CONVERTERS)
def test_dense_head_matches_keras_and_writes_the_tflite_report_fields(tmp_path, converter):
    keras.utils.set_random_seed(1)
    model = models.build("A", include_preprocessing=True, preprocessing="caffe", **NARROW)
    path = onnx_export.export_onnx(model, str(tmp_path / "dense.onnx"), converter=converter)
    assert os.listdir(tmp_path) == ["dense.onnx"]  # written under a temporary name, renamed into place
    assert _inputs_and_outputs(path) == ([("images", ["batch", 32, 32, 3])], [("probabilities", ["batch", CLASSES])])
    report = onnx_export.onnx_parity_report(model, path, _images(12), verbose=False)
    assert report["max_abs_diff"] < 1e-5 and report["top1_agreement"] == 1.0 and report["num_images"] == 12
    with open(report["report_path"], encoding="utf-8") as f:
        assert json.load(f) == report
    assert report["report_path"] == f"{path}.parity.json" and report["onnx_ms_per_image"] > 0
    assert 0.9 < report["size_ratio"] < 1.5  # float32 weights, little else
    # The TFLite report's fields, with the format's prefix.
    tflite_fields = [
        "tflite_path",
        "num_images",
        "max_abs_diff",
        "mean_abs_diff",
        "top1_agreement",
        "tflite_bytes",
        "keras_float32_bytes",
        "tflite_ms_per_image",
        "size_ratio",
        "report_path",
    ]
    assert list(report) == [field.replace("tflite", "onnx") for field in tflite_fields]


@pytest.mark.parametrize("height, width", [(32, 32), (48, 64)])
def test_conv_head_runs_at_any_size(conv_head, height, width):
    model, path = conv_head
    assert _inputs_and_outputs(path)[0] == [("images", ["batch", "height", "width", 3])]
    images = _images(3, height, width, seed=height)
    actual, seconds = onnx_export.run_onnx(path, images)
    np.testing.assert_allclose(actual, model.predict(images, verbose=0), atol=1e-5)
    assert seconds > 0
    report = onnx_export.onnx_parity_report(model, path, images, verbose=False)
    assert report["max_abs_diff"] < 1e-5 and report["top1_agreement"] == 1.0
    batched, _ = onnx_export.run_onnx(path, images, batch_size=2)  # a full batch and a partial one
    np.testing.assert_allclose(batched, actual, atol=1e-6)


@pytest.mark.parametrize("converter", CONVERTERS_TORCH_SLOW)
def test_conv_head_at_a_fixed_size(conv_model, tmp_path, converter):
    model = conv_model
    path = onnx_export.export_onnx(model, str(tmp_path / "fixed.onnx"), image_size=48, converter=converter)
    assert _inputs_and_outputs(path)[0] == [("images", ["batch", 48, 48, 3])]
    np.testing.assert_allclose(
        onnx_export.run_onnx(path, _images(2, 48, 48))[0], model.predict(_images(2, 48, 48), verbose=0), atol=1e-5
    )


@pytest.mark.parametrize("converter", CONVERTERS_TORCH_SLOW)
def test_model_without_preprocessing_layer_gets_it_prepended(tmp_path, converter):
    raw = models.build("A", input_shape=(32, 32, 3), **NARROW)
    path = onnx_export.export_onnx(raw, str(tmp_path / "raw.onnx"), preprocessing="caffe", converter=converter)
    images = _images(4)
    expected = raw.predict(preprocessing.preprocess_input(images, mode="caffe"), verbose=0)
    np.testing.assert_allclose(onnx_export.run_onnx(path, images)[0], expected, atol=1e-5)
    report = onnx_export.onnx_parity_report(raw, path, images, preprocessing="caffe", verbose=False)
    assert report["max_abs_diff"] < 1e-5


@pytest.mark.parametrize("converter", CONVERTERS)
def test_batch_norm_logits_model_exports_probabilities(tmp_path, converter):
    """BatchNorm (moving statistics, not the batch's) and a logits head: the ONNX model holds the soft-max."""
    keras.utils.set_random_seed(2)
    model = models.build(
        "A", batch_norm=True, classifier_activation=None, include_preprocessing=True, preprocessing="torch", **NARROW
    )
    for layer in model.layers:  # moving statistics away from (0, 1), so inference-mode BatchNorm is exercised
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.full(layer.moving_mean.shape, 0.3, "float32"))
            layer.moving_variance.assign(np.full(layer.moving_variance.shape, 2.0, "float32"))
    path = onnx_export.export_onnx(model, str(tmp_path / "bn.onnx"), opset=17, converter=converter)
    images = _images(4)
    logits = model.predict(images, verbose=0)
    expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(onnx_export.run_onnx(path, images)[0], expected, atol=1e-5)


@pytest.mark.parametrize("converter", CONVERTERS)
def test_channels_first_model_keeps_its_layout(tmp_path, converter):
    keras.utils.set_random_seed(3)
    model = models.build(
        "A-LRN", head="conv", data_format="channels_first", include_preprocessing=True, preprocessing="caffe", **NARROW
    )
    path = onnx_export.export_onnx(model, str(tmp_path / "cf.onnx"), converter=converter)
    assert _inputs_and_outputs(path)[0] == [("images", ["batch", 3, "height", "width"])]
    images = _images(3, 40, 48)  # channels last: the report transposes them for this model
    expected = models.to_data_format(model, "channels_last").predict(images, verbose=0)
    np.testing.assert_allclose(onnx_export.run_onnx(path, images.transpose(0, 3, 1, 2))[0], expected, atol=1e-5)
    assert onnx_export.onnx_parity_report(model, path, images, verbose=False)["max_abs_diff"] < 1e-5
    with pytest.raises(ValueError, match="channels_first.*to_data_format"):
        raw = models.build("A", data_format="channels_first", **NARROW)
        onnx_export.export_onnx(raw, str(tmp_path / "raw_cf.onnx"), preprocessing="caffe", converter=converter)


def test_tflite_rejects_a_channels_first_model_naming_the_fix(tmp_path):
    model = models.build("A", data_format="channels_first", include_preprocessing=True, **NARROW)
    with pytest.raises(ValueError, match=r"channels_first.*to_data_format\(model, 'channels_last'\)"):
        tflite.export_tflite(model, str(tmp_path / "cf.tflite"))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "converter, package, extras",
    [
        ("tf2onnx", "onnx", "onnx"),
        ("tf2onnx", "tf2onnx", "onnx"),
        ("tf2onnx", "onnxruntime", "onnx"),
        ("torch", "onnx", "onnx,torch"),
        ("torch", "torch", "onnx,torch"),
    ],
)
def test_missing_package_names_the_install_command(conv_model, tmp_path, monkeypatch, converter, package, extras):
    monkeypatch.setitem(sys.modules, package, None)  # `import package` now raises ImportError
    expected = rf'missing: {package}\. Install them with pip install "vgg_keras\[{extras}\]"'
    with pytest.raises(ImportError, match=expected):
        onnx_export.export_onnx(conv_model, str(tmp_path / "m.onnx"), converter=converter)
    assert os.listdir(tmp_path) == []


def test_auto_converter_is_torch_when_installed_else_tf2onnx(monkeypatch):
    assert onnx_export.resolve_converter("auto") == "torch"  # installed here (the test extra)
    monkeypatch.setitem(sys.modules, "torch", None)
    assert onnx_export.resolve_converter("auto") == "tf2onnx"
    assert onnx_export.resolve_converter("torch") == "torch"  # asked for: export_onnx then names what is missing


def test_unknown_converter_names_the_allowed_ones(conv_model, tmp_path):
    with pytest.raises(ValueError, match="converter='onnxmltools'; allowed: 'auto', 'torch', 'tf2onnx'"):
        onnx_export.export_onnx(conv_model, str(tmp_path / "m.onnx"), converter="onnxmltools")
    assert os.listdir(tmp_path) == []


def test_failing_torch_worker_raises_with_its_stderr(conv_model, tmp_path, monkeypatch):
    """A worker that fails (here: a model file that is not one) surfaces its stderr; no ONNX file is left."""
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip archive")
    spec = {"sample_shape": [1, 32, 32, 3], "dynamic_axes": {"0": "batch"}, "opset": None}
    expected = r"(?s)_onnx_worker\) failed with exit code 1 .*stderr:\nmodel_path=.*broken\.keras' is not a \.keras"
    with pytest.raises(RuntimeError, match=expected):
        onnx_export.run_worker(str(broken), str(tmp_path / "m.onnx"), spec)
    assert not os.path.exists(tmp_path / "m.onnx")
    # Through export_onnx: the worker's failure propagates and the partial file is removed.
    monkeypatch.setattr(onnx_export, "WORKER_MODULE", "no_such_onnx_worker")  # fails at once: no imports first
    with pytest.raises(RuntimeError, match="No module named no_such_onnx_worker"):
        onnx_export.export_onnx(conv_model, str(tmp_path / "out" / "m.onnx"), converter="torch")
    assert os.listdir(tmp_path / "out") == []


def test_model_without_classifier_is_refused(tmp_path):
    features = models.build("A", include_top=False, include_preprocessing=True, width_multiplier=1 / 16)
    with pytest.raises(ValueError, match="no classifier.*include_top=True"):
        onnx_export.export_onnx(features, str(tmp_path / "features.onnx"))
    assert os.listdir(tmp_path) == []


def test_importing_the_export_needs_no_onnx_package(monkeypatch):
    for package in (*onnx_export.EXPORT_PACKAGES, "torch"):
        monkeypatch.setitem(sys.modules, package, None)  # any import of them now raises ImportError
    importlib.reload(onnx_export)  # runs the module's top level again: it must import none of them
    assert callable(onnx_export.export_onnx)


def test_bad_sizes_and_opset_name_the_argument(conv_model, tmp_path):
    model = conv_model
    dense = models.build("A", include_preprocessing=True, **NARROW)
    with pytest.raises(ValueError, match="image_size=48 .* takes 32x32 images; allowed: None or that size"):
        onnx_export.export_onnx(dense, str(tmp_path / "a.onnx"), image_size=48)
    with pytest.raises(ValueError, match=r"image_size=16 .*allowed: None or >= 32"):
        onnx_export.export_onnx(model, str(tmp_path / "a.onnx"), image_size=16)
    with pytest.raises(ValueError, match="opset=0; allowed: an integer >= 1"):
        onnx_export.export_onnx(model, str(tmp_path / "a.onnx"), opset=0)
    with pytest.raises(ValueError, match="image_size=48 .* takes 32x32"):  # TFLite shares the check
        tflite.export_tflite(dense, str(tmp_path / "a.tflite"), image_size=48)
    assert os.listdir(tmp_path) == []


def test_existing_file_needs_overwrite(conv_model, tmp_path):
    model = conv_model
    existing = tmp_path / "exists.onnx"
    existing.write_bytes(b"x")
    with pytest.raises(ValueError, match="exists; pass overwrite=True"):
        onnx_export.export_onnx(model, str(existing))
    assert existing.read_bytes() == b"x"
    onnx_export.export_onnx(model, str(existing), overwrite=True, converter="tf2onnx")
    assert existing.stat().st_size > 1000 and os.listdir(tmp_path) == ["exists.onnx"]


@pytest.mark.slow  # a subprocess that imports TensorFlow and builds vgg_shapes/tiny (~40 s on 2 loaded cores)
def test_recipe_writes_onnx_and_tflite_with_reports(conv_model, tmp_path):
    """--formats=onnx,tflite: both files with parity reports, no SavedModel (not asked for)."""
    model_path = str(tmp_path / "conv.keras")
    conv_model.save(model_path)
    command = [
        sys.executable,
        os.path.join(ROOT, "recipes", "export.py"),
        f"--model={model_path}",
        "--dataset=vgg_shapes/tiny",
        f"--data_dir={tmp_path / 'tfds'}",
        f"--export_root={tmp_path / 'savedmodels'}",
        "--model_name=narrow",
        f"--onnx_dir={tmp_path / 'onnx'}",
        f"--tflite_dir={tmp_path / 'tflite'}",
        "--formats=onnx,tflite",
        "--num_images=8",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not os.path.exists(tmp_path / "savedmodels")
    assert sorted(os.listdir(tmp_path / "tflite")) == ["narrow_float32.tflite", "narrow_float32.tflite.parity.json"]
    report = json.loads((tmp_path / "onnx" / "narrow.onnx.parity.json").read_text())
    assert report["onnx_path"] == str(tmp_path / "onnx" / "narrow.onnx") and report["num_images"] == 8
    assert report["max_abs_diff"] < 1e-5 and report["top1_agreement"] == 1.0
    assert _inputs_and_outputs(report["onnx_path"])[0] == [("images", ["batch", "height", "width", 3])]
