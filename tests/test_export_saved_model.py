"""SavedModel export for TF Serving: signatures reloaded and compared with the Keras model,
the repository layout (versions, models.config, batching), bad input, and the client's
REST / gRPC requests fed through the reloaded signatures (no server needed).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from vgg_keras import models, preprocessing
from vgg_keras.data import crops
from vgg_keras.export import client, repository, saved_model

CLASSES = 5
NAMES = ("cat", "dog", "fox", "owl", "yak")


def _smooth_image(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth random RGB image (compresses like a photo, unlike white noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.BILINEAR))


def _encode(pixels: np.ndarray, fmt: str, mode: str | None = None) -> bytes:
    image = Image.fromarray(pixels)
    if mode:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def _reference(model, encoded: bytes, *, resize: int, crop: int | None, mode: str | None = None) -> np.ndarray:
    """The in-memory model on the image through the Python pipeline ops."""
    image = crops.resize_smallest_side(crops.decode_image(tf.constant(encoded)), resize)
    if crop is not None:
        image = crops.center_crop(image, crop)
    batch = image[tf.newaxis]
    if mode is not None:
        batch = preprocessing.preprocess_input(batch, mode=mode)
    return np.asarray(model(batch, training=False))[0]


@pytest.fixture(scope="module")
def jpegs() -> list[bytes]:
    return [_encode(_smooth_image(h, w, seed), "JPEG") for seed, (h, w) in enumerate([(48, 64), (90, 40), (37, 37)])]


@pytest.fixture(scope="module")
def baked():
    """Tiny classifier with its normalisation baked in (torch mode), dense head, 32 px."""
    return models.build(
        "A",
        width_multiplier=1 / 16,
        fc_units=32,
        base_size=32,
        classes=CLASSES,
        include_preprocessing=True,
        preprocessing="torch",
    )


@pytest.fixture(scope="module")
def raw():
    """Tiny classifier without a preprocessing layer (normalised by the export: caffe)."""
    return models.build(
        "B", width_multiplier=1 / 16, fc_units=32, base_size=32, classes=CLASSES, classifier_activation=None
    )


@pytest.fixture(scope="module")
def center_dir(baked, tmp_path_factory):
    root = tmp_path_factory.mktemp("center")
    return saved_model.export_saved_model(baked, str(root), "tiny", class_names=NAMES, top_k=3)


@pytest.fixture(scope="module")
def center(center_dir):
    return tf.saved_model.load(center_dir)


@pytest.fixture(scope="module")
def dense(raw, tmp_path_factory):
    root = tmp_path_factory.mktemp("dense")
    path = saved_model.export_saved_model(
        raw, str(root), "raw", mode="dense", preprocessing="caffe", resize_size=40, include_float_signature=False
    )
    return tf.saved_model.load(path)


def _call(loaded, signature: str, **inputs) -> dict[str, np.ndarray]:
    return {key: value.numpy() for key, value in loaded.signatures[signature](**inputs).items()}


# --------------------------------------------------------------------------- signatures


def test_bytes_signature_equals_keras_model_on_pipeline_crops(center, baked, jpegs):
    out = _call(center, "serving_default", images=tf.constant(jpegs))
    expected = np.stack([_reference(baked, j, resize=37, crop=32) for j in jpegs])
    np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)
    order = np.argsort(-expected, axis=1, kind="stable")[:, :3]
    np.testing.assert_array_equal(out["top_k_indices"], order)
    np.testing.assert_allclose(out["top_k_scores"], np.take_along_axis(expected, order, 1), atol=1e-5)
    assert out["top_k_classes"].tolist() == [[NAMES[i].encode() for i in row] for row in order]


def test_tensor_and_float_signatures_match_bytes_signature(center, baked):
    pixels = _smooth_image(50, 70, seed=7)
    png = _encode(pixels, "PNG")  # lossless: the same pixels both ways
    from_bytes = _call(center, "serving_default", images=tf.constant([png]))
    from_tensor = _call(center, "predict_image_tensor", images=tf.constant(pixels[np.newaxis]))
    np.testing.assert_allclose(from_tensor["probabilities"], from_bytes["probabilities"], atol=1e-6)
    crop = crops.center_crop(crops.resize_smallest_side(pixels, 37), 32)[tf.newaxis]
    from_float = _call(center, "predict_float", inputs=crop)
    np.testing.assert_allclose(from_float["probabilities"], np.asarray(baked(crop)), atol=1e-5)


def test_dense_mode_equals_fully_convolutional_model_and_applies_softmax(dense, raw, jpegs):
    out = _call(dense, "serving_default", images=tf.constant(jpegs))
    conv = models.to_fully_convolutional(raw)
    logits = np.stack([_reference(conv, j, resize=40, crop=None, mode="caffe") for j in jpegs])
    expected = tf.nn.softmax(logits).numpy()
    np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)
    np.testing.assert_allclose(out["probabilities"].sum(1), 1.0, atol=1e-5)
    assert "predict_float" not in dense.signatures
    assert out["top_k_classes"][0].tolist() == [str(i).encode() for i in out["top_k_indices"][0]]


def test_dense_mode_float_signature_takes_a_batch_of_whole_images(raw, tmp_path):
    path = saved_model.export_saved_model(
        raw, str(tmp_path), "raw", mode="dense", preprocessing="caffe", update_config=False
    )
    loaded = tf.saved_model.load(path)
    inputs = tf.random.stateless_uniform([2, 45, 38, 3], seed=(3, 4), minval=-100.0, maxval=100.0)
    out = _call(loaded, "predict_float", inputs=inputs)
    expected = tf.nn.softmax(models.to_fully_convolutional(raw)(inputs, training=False)).numpy()
    np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)


def test_saved_model_cli_lists_documented_signatures(center_dir):
    # What `saved_model_cli show --dir DIR --all` prints, in-process (a subprocess would
    # spend most of its time importing TensorFlow again).
    from tensorflow.python.tools import saved_model_cli

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        saved_model_cli._show_all(center_dir)
    blocks = dict(re.findall(r"signature_def\['(\w+)'\]:(.*?)(?=signature_def\[|\Z)", printed.getvalue(), re.S))
    expected_inputs = {
        "serving_default": ("images", "DT_STRING"),
        "predict_image_tensor": ("images", "DT_UINT8"),
        "predict_float": ("inputs", "DT_FLOAT"),
    }
    outputs = {
        "probabilities": "DT_FLOAT",
        "top_k_indices": "DT_INT32",
        "top_k_scores": "DT_FLOAT",
        "top_k_classes": "DT_STRING",
    }
    for name, (input_name, dtype) in expected_inputs.items():
        text = blocks[name]
        assert re.search(rf"inputs\['{input_name}'\] tensor_info:\s+dtype: {dtype}", text), text
        for output, output_dtype in outputs.items():
            assert re.search(rf"outputs\['{output}'\] tensor_info:\s+dtype: {output_dtype}", text), text


# --------------------------------------------------------------------------- awkward input


def test_grayscale_cmyk_and_rgba_images_become_rgb(center):
    pixels = _smooth_image(40, 60, seed=3)
    gray = np.asarray(Image.fromarray(pixels).convert("L"))
    gray_png, gray_as_rgb = _encode(gray, "PNG"), _encode(np.repeat(gray[..., None], 3, -1), "PNG")
    out = _call(center, "serving_default", images=tf.constant([gray_png, gray_as_rgb]))
    np.testing.assert_allclose(out["probabilities"][0], out["probabilities"][1], atol=1e-6)
    cmyk = _encode(pixels, "JPEG", mode="CMYK")
    rgba = _encode(pixels, "PNG", mode="RGBA")
    out = _call(center, "serving_default", images=tf.constant([cmyk, rgba]))
    decoded = crops.decode_image(tf.constant(cmyk)).numpy()
    assert np.abs(decoded.astype(int) - pixels).mean() < 8  # CMYK really converted to RGB
    via_tensor = _call(center, "predict_image_tensor", images=tf.constant(decoded[np.newaxis]))
    np.testing.assert_allclose(out["probabilities"][0], via_tensor["probabilities"][0], atol=1e-6)
    via_rgb = _call(center, "predict_image_tensor", images=tf.constant(pixels[np.newaxis]))
    np.testing.assert_allclose(out["probabilities"][1], via_rgb["probabilities"][0], atol=1e-6)


def test_non_image_bytes_fail_with_invalid_argument(center, jpegs):
    for bad in (b"definitely not an image", b"", jpegs[0][:20]):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?i)image|jpeg|corrupt|truncat"):
            center.signatures["serving_default"](images=tf.constant([jpegs[1], bad]))


def test_empty_batch_and_huge_image(center):
    for name, empty in (
        ("serving_default", tf.zeros([0], tf.string)),
        ("predict_image_tensor", tf.zeros([0, 8, 8, 3], tf.uint8)),
    ):
        out = _call(center, name, images=empty)
        assert out["probabilities"].shape == (0, CLASSES) and out["top_k_classes"].shape == (0, 3)
    huge = _encode(_smooth_image(2400, 3200, seed=5), "JPEG")
    out = _call(center, "serving_default", images=tf.constant([huge]))
    assert out["probabilities"].shape == (1, CLASSES)
    np.testing.assert_allclose(out["probabilities"].sum(), 1.0, atol=1e-5)


# --------------------------------------------------------------------------- repository


def test_versions_models_config_and_batching(baked, tmp_path):
    root = str(tmp_path)
    first = saved_model.export_saved_model(baked, root, "tiny")
    second = saved_model.export_saved_model(baked, root, "tiny", include_float_signature=False)
    assert (first, second) == (os.path.join(root, "tiny", "1"), os.path.join(root, "tiny", "2"))
    assert repository.list_versions(os.path.join(root, "tiny")) == [1, 2]
    with pytest.raises(FileExistsError, match=re.escape(first)):
        saved_model.export_saved_model(baked, root, "tiny", version=1)
    assert sorted(os.listdir(os.path.join(root, "tiny"))) == ["1", "2"]  # nothing half-written left
    info = json.load(open(os.path.join(second, saved_model.EXPORT_INFO)))
    assert info["signatures"] == ["serving_default", "predict_image_tensor"] and info["resize_size"] == 37
    text = open(os.path.join(root, "models.config")).read()
    assert repository.configured_models(text) == ["tiny"] and 'base_path: "/models/tiny"' in text
    batching = open(os.path.join(root, "batching_parameters.txt")).read()
    assert "max_batch_size { value: 8 }" in batching and "batch_timeout_micros { value: 0 }" in batching


def test_models_config_keeps_edits_and_parses_as_model_server_config(tmp_path):
    root = str(tmp_path)
    path = repository.update_models_config(root, "vgg16")
    edited = open(path).read().replace("latest { num_versions: 1 }", "specific { versions: 1 versions: 2 }")
    open(path, "w").write(edited)
    repository.update_models_config(root, "vgg19", base_path_prefix="/srv/")
    repository.update_models_config(root, "vgg16")
    text = open(path).read()
    assert repository.configured_models(text) == ["vgg16", "vgg19"]
    assert "specific { versions: 1 versions: 2 }" in text and 'base_path: "/srv/vgg19"' in text
    config_pb2 = pytest.importorskip("tensorflow_serving.config.model_server_config_pb2")
    from google.protobuf import text_format

    config = text_format.Parse(text, config_pb2.ModelServerConfig())
    assert [c.name for c in config.model_config_list.config] == ["vgg16", "vgg19"]
    assert list(config.model_config_list.config[0].model_version_policy.specific.versions) == [1, 2]
    with pytest.raises(ValueError, match="model_name"):
        repository.update_models_config(root, "../escape")


def test_batching_parameters_template_is_the_generated_default():
    template = os.path.join(os.path.dirname(__file__), "..", "savedmodels", "batching_parameters.txt")
    assert open(template).read() == repository.batching_parameters_text()
    with pytest.raises(ValueError, match="max_batch_size=0"):
        repository.batching_parameters_text(max_batch_size=0)


def test_batching_parameters_for_a_gpu_pad_batches_to_allowed_sizes():
    text = repository.batching_parameters_text(
        max_batch_size=64, batch_timeout_micros=2000, allowed_batch_sizes=(8, 16, 32, 64)
    )
    lines = text.splitlines()
    assert "max_batch_size { value: 64 }" in lines and "batch_timeout_micros { value: 2000 }" in lines
    assert [line for line in lines if line.startswith("allowed")] == [
        f"allowed_batch_sizes: {n}" for n in (8, 16, 32, 64)
    ]
    for sizes in ((8, 16, 32), (16, 8, 64), (0, 64), ()):  # TF Serving refuses to start on each of these
        with pytest.raises(ValueError, match="allowed_batch_sizes="):
            repository.batching_parameters_text(max_batch_size=64, allowed_batch_sizes=sizes)


def test_export_from_keras_file_and_bad_arguments(baked, raw, tmp_path):
    path = str(tmp_path / "model.keras")
    baked.save(path)
    version_dir = saved_model.export_saved_model(path, str(tmp_path / "repo"), update_config=False)
    assert version_dir.endswith(os.path.join(baked.name, "1"))
    assert not os.path.exists(tmp_path / "repo" / "models.config")
    root = str(tmp_path / "bad")
    bad_calls = [
        (dict(model=baked, preprocessing="caffe"), "normalises its input"),
        (dict(model=raw), "preprocessing=None"),
        (dict(model=raw, preprocessing="nope"), "mode"),
        (dict(model=baked, mode="sliding"), "mode='sliding'"),
        (dict(model=baked, top_k=6), "top_k=6"),
        (dict(model=baked, class_names=["a"]), "class_names"),
        (dict(model=baked, image_size=64), "image_size=64"),
        (dict(model=baked, mode="dense", image_size=32), "image_size=32"),
        (dict(model=baked, resize_size=16), "resize_size=16"),
        (dict(model=baked, version=0), "version=0"),
        (
            dict(model=models.build("A", include_top=False, width_multiplier=1 / 16, input_shape=(32, 32, 3))),
            "include_top",
        ),
        (dict(model=str(tmp_path / "missing.keras")), "missing.keras"),
    ]
    for kwargs, message in bad_calls:
        with pytest.raises(ValueError, match=re.escape(message)):
            saved_model.export_saved_model(export_root=root, model_name="bad", **kwargs)
    assert repository.list_versions(os.path.join(root, "bad")) == []


# --------------------------------------------------------------------------- client


def test_rest_body_decodes_to_signature_inputs(center, jpegs, tmp_path):
    path = tmp_path / "image.jpg"
    path.write_bytes(jpegs[0])
    body = json.loads(json.dumps(client.rest_request_body([str(path), jpegs[1]])))
    assert body["signature_name"] == "serving_default"
    sent = [base64.b64decode(item["b64"]) for item in body["inputs"]["images"]]
    assert sent == jpegs[:2]
    out = _call(center, body["signature_name"], images=tf.constant(sent))
    np.testing.assert_allclose(
        out["probabilities"], _call(center, "serving_default", images=tf.constant(jpegs[:2]))["probabilities"]
    )
    pixels = np.stack([_smooth_image(40, 50, seed=1)] * 2)
    body = json.loads(json.dumps(client.rest_request_body(pixels)))
    assert body["signature_name"] == "predict_image_tensor"
    out = _call(center, body["signature_name"], images=tf.constant(body["inputs"]["images"], tf.uint8))
    assert out["probabilities"].shape == (2, CLASSES)
    assert (
        client.rest_url("tiny", host="h", version_label="canary")
        == "http://h:8501/v1/models/tiny/labels/canary:predict"
    )


def test_parse_rest_response_formats():
    columnar = {
        "outputs": {
            "probabilities": [[0.9, 0.1]],
            "top_k_indices": [[0]],
            "top_k_scores": [[0.9]],
            "top_k_classes": [[{"b64": base64.b64encode(b"cat").decode()}]],
        }
    }
    parsed = client.parse_rest_response(json.dumps(columnar))
    assert parsed["top_k_classes"].tolist() == [["cat"]] and parsed["probabilities"].shape == (1, 2)
    rows = {"predictions": [{"top_k_classes": ["dog"], "top_k_scores": [0.7]}]}
    assert client.as_labels(client.parse_rest_response(rows)) == [[("dog", 0.7)]]
    with pytest.raises(ValueError, match="Unknown image file format"):
        client.parse_rest_response({"error": "Unknown image file format"})
    with pytest.raises(ValueError, match="uint8"):
        client.rest_request_body(np.zeros((1, 4, 4, 3), np.float32))


def test_grpc_request_decodes_to_signature_inputs_and_response_parses(center, jpegs):
    pytest.importorskip("tensorflow_serving.apis.predict_pb2")
    from tensorflow_serving.apis import predict_pb2

    request = client.grpc_request(jpegs, "tiny", version=2)
    request = predict_pb2.PredictRequest.FromString(request.SerializeToString())
    assert (request.model_spec.name, request.model_spec.signature_name, request.model_spec.version.value) == (
        "tiny",
        "serving_default",
        2,
    )
    sent = tf.make_ndarray(request.inputs["images"])
    assert sent.tolist() == jpegs
    out = center.signatures[request.model_spec.signature_name](images=tf.constant(sent))
    response = predict_pb2.PredictResponse()
    for key, value in out.items():
        response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
    parsed = client.parse_grpc_response(response)
    np.testing.assert_array_equal(parsed["probabilities"], out["probabilities"].numpy())
    assert parsed["top_k_classes"].tolist() == [[n.decode() for n in row] for row in out["top_k_classes"].numpy()]
    pixels = np.stack([_smooth_image(30, 40, seed=2)])
    tensor_request = client.grpc_request(pixels, "tiny", version_label="stable")
    assert tensor_request.model_spec.signature_name == "predict_image_tensor"
    np.testing.assert_array_equal(tf.make_ndarray(tensor_request.inputs["images"]), pixels)
    with pytest.raises(ValueError, match="at most one"):
        client.grpc_request(jpegs, "tiny", version=1, version_label="stable")


def _serve_rest(loaded):
    """A stand-in for TF Serving's REST API on 127.0.0.1: runs the reloaded signatures."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self.server.paths.append(self.path)
            images = body["inputs"]["images"]
            value = [base64.b64decode(i["b64"]) for i in images] if isinstance(images[0], dict) else np.uint8(images)
            try:
                out = _call(loaded, body["signature_name"], images=tf.constant(value))
                status, reply = (
                    200,
                    {"outputs": {k: (v.astype(str) if v.dtype == object else v).tolist() for k, v in out.items()}},
                )
            except tf.errors.InvalidArgumentError as error:
                status, reply = 400, {"error": error.message}
            self.send_response(status)
            self.end_headers()
            self.wfile.write(json.dumps(reply).encode())

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    server.paths = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_predict_rest_against_a_local_server(center, jpegs):
    server = _serve_rest(center)
    try:
        result = client.predict_rest(jpegs[:2], "tiny", host="127.0.0.1", port=server.server_port, version=3)
        expected = _call(center, "serving_default", images=tf.constant(jpegs[:2]))
        np.testing.assert_allclose(result["probabilities"], expected["probabilities"], atol=1e-6)
        assert result["top_k_classes"].tolist() == [[n.decode() for n in row] for row in expected["top_k_classes"]]
        assert server.paths == ["/v1/models/tiny/versions/3:predict"]
        with pytest.raises(ValueError, match="Unknown image file format"):
            client.predict_rest([b"not an image"], "tiny", host="127.0.0.1", port=server.server_port)
    finally:
        server.shutdown()
        server.server_close()


def test_predict_grpc_against_a_local_server(center, jpegs):
    pytest.importorskip("tensorflow_serving.apis.prediction_service_pb2_grpc")
    from concurrent import futures

    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):  # noqa: N802
            images = tf.constant(tf.make_ndarray(request.inputs["images"]))
            response = predict_pb2.PredictResponse()
            for key, value in center.signatures[request.model_spec.signature_name](images=images).items():
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        result = client.predict_grpc(jpegs, "tiny", target=f"127.0.0.1:{port}")
        expected = _call(center, "serving_default", images=tf.constant(jpegs))
        np.testing.assert_array_equal(result["probabilities"], expected["probabilities"])
        assert client.as_labels(result)[0][0][0] == expected["top_k_classes"][0][0].decode()
    finally:
        server.stop(None)


# --------------------------------------------------------------------------- logs, resize rule


def test_export_logs_no_info_chatter(baked, tmp_path, caplog):
    """tf.saved_model.save's INFO lines (temporary directory, captured inputs renamed
    input_1 ... input_N, sharding, fingerprint) are hidden; the verbosity is restored.
    """
    import logging

    from absl import logging as absl_logging

    verbosity = absl_logging.get_verbosity()
    with caplog.at_level(logging.INFO):
        saved_model.export_saved_model(baked, str(tmp_path), "quiet")
    chatter = [
        r.getMessage()
        for r in caplog.records
        if re.search(r"input_1|Assets written|fingerprint|Sharding", r.getMessage())
    ]
    assert chatter == []
    assert absl_logging.get_verbosity() == verbosity


def test_run_resize_size_is_the_runs_validation_scale(tmp_path):
    model_path = tmp_path / "model.keras"
    model_path.touch()  # only where the file lies matters
    assert saved_model.run_resize_size(model_path) is None  # no run config: the 256/224 default applies
    (tmp_path / "config.json").write_text(json.dumps({"data": {"eval_scale": 72, "crop_size": 64}}))
    assert saved_model.run_resize_size(model_path) == saved_model.run_resize_size(str(model_path), 64) == 72
    assert saved_model.run_resize_size(model_path, 96) is None  # another crop than the run's
    assert saved_model.run_resize_size(tmp_path / "vgg16") is None  # a model name, not a run's file


def test_load_for_export_gives_a_named_model_its_weights_normalisation(tmp_path):
    from vgg_keras import weights

    narrow = dict(width_multiplier=1 / 16, fc_units=32, base_size=32, classes=CLASSES)
    trained = models.build("A", **narrow)
    path = weights.save_weights(trained, str(tmp_path / "a.weights.h5"), preprocessing="torch")
    model, mode = saved_model.load_for_export("A", weights=path, **narrow)
    assert mode is None and saved_model.has_preprocessing_layer(model)  # the exports need no argument
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(model(images), trained(preprocessing.preprocess_input(images, mode="torch")), atol=1e-5)
    raw, mode = saved_model.load_for_export("A", "none", weights=path, **narrow)
    assert mode == "none" and not saved_model.has_preprocessing_layer(raw)
    trained.save(tmp_path / "a.keras")
    loaded, mode = saved_model.load_for_export(str(tmp_path / "a.keras"), "torch")
    assert mode == "torch" and not saved_model.has_preprocessing_layer(loaded)  # a file passes it through
