"""A small TF Serving client: REST and gRPC predict requests from image files, and replies.

REST needs nothing beyond the standard library; gRPC needs the optional extra
`tensorflow-serving-api` (`pip install vgg_keras[serving]`). Request building and response
parsing are separate from the network calls, so they can be checked without a server.

    from vgg_keras.export import client
    result = client.predict_rest(["cat.jpg"], "vgg16", host="localhost")
    result["top_k_classes"][0]   # e.g. ['tabby', 'tiger cat', ...]
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from vgg_keras.export.signatures import INPUT_IMAGES, SIGNATURE_BYTES, SIGNATURE_TENSOR

__all__ = [
    "read_images",
    "rest_url",
    "rest_request_body",
    "parse_rest_response",
    "predict_rest",
    "grpc_request",
    "parse_grpc_response",
    "predict_grpc",
    "as_labels",
]

REST_PORT = 8501
GRPC_PORT = 8500
# Full-size photos exceed gRPC's 4 MiB default message limit.
_GRPC_MESSAGE_BYTES = 64 * 1024 * 1024


def read_images(images: Iterable[bytes | str | os.PathLike]) -> list[bytes]:
    """Encoded image bytes from file paths or bytes (kept as they are; the server decodes).

    Raises:
        TypeError: If an element is neither bytes nor a path.
        FileNotFoundError: If a path does not exist.
    """
    if isinstance(images, (bytes, str, os.PathLike)):
        images = [images]
    encoded = []
    for image in images:
        if isinstance(image, (bytes, bytearray)):
            encoded.append(bytes(image))
        elif isinstance(image, (str, os.PathLike)):
            with open(image, "rb") as f:
                encoded.append(f.read())
        else:
            raise TypeError(f"images element {type(image).__name__}; allowed: encoded image bytes or a file path.")
    return encoded


def _inputs(images, signature_name: str | None) -> tuple[Any, str]:
    """(bytes list or uint8 array, signature name) for `images`."""
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(
                f"images array of dtype {images.dtype} and shape {images.shape}; "
                "allowed: uint8 [batch, height, width, 3]."
            )
        return images, signature_name or SIGNATURE_TENSOR
    return read_images(images), signature_name or SIGNATURE_BYTES


# --------------------------------------------------------------------------- REST


def rest_url(
    model_name: str,
    *,
    host: str = "localhost",
    port: int = REST_PORT,
    version: int | None = None,
    version_label: str | None = None,
) -> str:
    """`http://host:8501/v1/models/<name>[/versions/<v> | /labels/<label>]:predict`.

    Raises:
        ValueError: If both `version` and `version_label` are given.
    """
    if version is not None and version_label is not None:
        raise ValueError(f"version={version!r} and version_label={version_label!r}; allowed: at most one.")
    path = f"/v1/models/{model_name}"
    if version is not None:
        path += f"/versions/{int(version)}"
    elif version_label is not None:
        path += f"/labels/{version_label}"
    return f"http://{host}:{port}{path}:predict"


def rest_request_body(images, signature_name: str | None = None) -> dict[str, Any]:
    """The JSON body of a REST predict request (columnar "inputs" format).

    Args:
        images: Encoded images (bytes or file paths), sent base64-encoded as `{"b64": ...}`
            to `serving_default`; or a uint8 array `[B, H, W, 3]`, sent as nested lists to
            `predict_image_tensor`.
        signature_name: Override the signature.

    Returns:
        `{"signature_name": ..., "inputs": {"images": [...]}}`, ready for `json.dumps`.
    """
    values, signature_name = _inputs(images, signature_name)
    if isinstance(values, np.ndarray):
        payload = values.tolist()
    else:
        payload = [{"b64": base64.b64encode(value).decode("ascii")} for value in values]
    return {"signature_name": signature_name, "inputs": {INPUT_IMAGES: payload}}


def _decode_json_value(value):
    """TF Serving sends strings that are not UTF-8 as `{"b64": ...}`; decode everything to str."""
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"]).decode("utf-8", errors="replace")
    if isinstance(value, list):
        return [_decode_json_value(v) for v in value]
    return value


def parse_rest_response(response: Mapping[str, Any] | str | bytes) -> dict[str, np.ndarray]:
    """Outputs of a REST predict response as arrays (`top_k_classes` as str).

    Accepts the columnar (`{"outputs": {...}}`) and the row (`{"predictions": [...]}`) format.

    Raises:
        ValueError: For an error response (its message is included) or an unknown format.
    """
    if isinstance(response, (str, bytes)):
        response = json.loads(response)
    if "error" in response:
        raise ValueError(f"TF Serving returned an error: {response['error']}")
    if "outputs" in response:
        outputs = response["outputs"]
    elif "predictions" in response:
        rows = response["predictions"]
        outputs = {key: [row[key] for row in rows] for key in (rows[0] if rows else {})}
    else:
        raise ValueError(f"Not a TF Serving predict response (no 'outputs' or 'predictions'): keys {sorted(response)}.")
    if not isinstance(outputs, dict):
        raise ValueError("The response has a single unnamed output; the vgg_keras signatures return named outputs.")
    return {key: np.asarray(_decode_json_value(value)) for key, value in outputs.items()}


def predict_rest(
    images,
    model_name: str,
    *,
    host: str = "localhost",
    port: int = REST_PORT,
    signature_name: str | None = None,
    version: int | None = None,
    version_label: str | None = None,
    timeout: float = 30.0,
) -> dict[str, np.ndarray]:
    """Sends a REST predict request and parses the reply (see `rest_request_body`).

    Returns:
        `{"probabilities", "top_k_indices", "top_k_scores", "top_k_classes"}` arrays.

    Raises:
        ValueError: If the server answers with an error.
        urllib.error.URLError: If the server cannot be reached.
    """
    url = rest_url(model_name, host=host, port=port, version=version, version_label=version_label)
    body = json.dumps(rest_request_body(images, signature_name)).encode("utf-8")
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return parse_rest_response(reply.read())
    except urllib.error.HTTPError as error:
        return parse_rest_response(error.read())


# --------------------------------------------------------------------------- gRPC


def _serving_apis():
    try:
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
    except ImportError as error:
        raise ImportError(
            "gRPC requests need the optional extra tensorflow-serving-api: pip install 'vgg_keras[serving]' "
            "(or pip install tensorflow-serving-api)."
        ) from error
    return predict_pb2, prediction_service_pb2_grpc


def grpc_request(
    images,
    model_name: str,
    *,
    signature_name: str | None = None,
    version: int | None = None,
    version_label: str | None = None,
):
    """A `tensorflow_serving.apis.predict_pb2.PredictRequest` for `images`.

    Args:
        images: As for `rest_request_body` (bytes/paths -> tf.string `[B]`; uint8 array).
        model_name: The served model's name.
        signature_name: Override the signature.
        version: Ask for one version; or `version_label` (e.g. "stable"), not both.
        version_label: A label from models.config.

    Returns:
        The `PredictRequest`.

    Raises:
        ImportError: Without tensorflow-serving-api.
        ValueError: If both `version` and `version_label` are given.
    """
    import tensorflow as tf

    if version is not None and version_label is not None:
        raise ValueError(f"version={version!r} and version_label={version_label!r}; allowed: at most one.")
    predict_pb2, _ = _serving_apis()
    values, signature_name = _inputs(images, signature_name)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    elif version_label is not None:
        request.model_spec.version_label = version_label
    shape = values.shape if isinstance(values, np.ndarray) else [len(values)]
    dtype = tf.uint8 if isinstance(values, np.ndarray) else tf.string
    request.inputs[INPUT_IMAGES].CopyFrom(tf.make_tensor_proto(values, dtype=dtype, shape=shape))
    return request


def parse_grpc_response(response) -> dict[str, np.ndarray]:
    """Outputs of a `PredictResponse` as arrays (`top_k_classes` as str)."""
    import tensorflow as tf

    outputs = {}
    for key, proto in response.outputs.items():
        value = tf.make_ndarray(proto)
        if value.dtype == object:
            value = np.vectorize(lambda b: b.decode("utf-8", errors="replace"), otypes=[str])(value)
        outputs[key] = value
    return outputs


def predict_grpc(
    images,
    model_name: str,
    *,
    target: str = f"localhost:{GRPC_PORT}",
    signature_name: str | None = None,
    version: int | None = None,
    version_label: str | None = None,
    timeout: float = 30.0,
) -> dict[str, np.ndarray]:
    """Sends a gRPC predict request to `target` ("host:8500") and parses the reply.

    Raises:
        ImportError: Without tensorflow-serving-api.
        grpc.RpcError: If the server fails the request (e.g. INVALID_ARGUMENT for a non-image).
    """
    import grpc

    _, service = _serving_apis()
    request = grpc_request(
        images, model_name, signature_name=signature_name, version=version, version_label=version_label
    )
    options = [
        ("grpc.max_send_message_length", _GRPC_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", _GRPC_MESSAGE_BYTES),
    ]
    with grpc.insecure_channel(target, options=options) as channel:
        return parse_grpc_response(service.PredictionServiceStub(channel).Predict(request, timeout=timeout))


def as_labels(result: Mapping[str, np.ndarray]) -> list[list[tuple[str, float]]]:
    """`[(class name, score), ...]` per image from a parsed response, best first."""
    classes: Sequence = result["top_k_classes"]
    return [list(zip(map(str, names), map(float, scores))) for names, scores in zip(classes, result["top_k_scores"])]
