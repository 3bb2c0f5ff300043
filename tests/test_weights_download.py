"""Download, verify and cache through a real HTTP server on 127.0.0.1 (no network needed)."""

import dataclasses
import hashlib
import http.server
import threading

import numpy as np
import pytest
from safetensors.numpy import save

import vgg_keras
from vgg_keras import weights as W

PAYLOAD = b"vgg weights " * 1000


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict = {}
    requests: list = []
    truncate: set = set()

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.requests.append(self.path)
        name = self.path.rsplit("/", 1)[-1]
        if name not in self.files:
            self.send_error(404)
            return
        data = self.files[name]
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2] if name in self.truncate else data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    handler = type("Handler", (_Handler,), {"files": {}, "requests": [], "truncate": set()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{httpd.server_port}/models"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _file(name, data=PAYLOAD, kind="md5"):
    digest = hashlib.md5(data).hexdigest() if kind == "md5" else hashlib.sha256(data).hexdigest()[:8]
    return W.WeightsFile(f"https://example.invalid/{name}", digest, kind)


def test_good_file_is_cached_and_reused_without_a_request(server, tmp_path):
    handler, url = server
    handler.files["a.h5"] = PAYLOAD
    path = W.fetch(_file("a.h5"), base_url=url, cache=str(tmp_path), progress=False)
    assert path == str(tmp_path / "a.h5") and (tmp_path / "a.h5").read_bytes() == PAYLOAD
    assert W.fetch(_file("a.h5"), base_url=url, cache=str(tmp_path), progress=False) == path
    assert handler.requests == ["/models/a.h5"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5"]


def test_sha256_prefix_as_torchvision(server, tmp_path):
    handler, url = server
    handler.files["vgg11-x.pth"] = PAYLOAD
    good = _file("vgg11-x.pth", kind="sha256_prefix")
    assert len(good.file_hash) == 8  # torchvision names files <arch>-<first 8 hex digits of sha256>.pth
    path = W.fetch(good, base_url=url, cache=str(tmp_path), progress=False)
    assert path == str(tmp_path / "vgg11-x.pth") and (tmp_path / "vgg11-x.pth").read_bytes() == PAYLOAD
    # Only the prefix is compared, but it is compared: another prefix is a mismatch, nothing cached.
    wrong = W.WeightsFile(
        "https://example.invalid/vgg11-y.pth", "0" * 8 if good.file_hash != "0" * 8 else "1" * 8, "sha256_prefix"
    )
    handler.files["vgg11-y.pth"] = PAYLOAD
    with pytest.raises(ValueError, match=f"expected sha256_prefix {wrong.file_hash}"):
        W.fetch(wrong, base_url=url, cache=str(tmp_path), progress=False)
    assert not (tmp_path / "vgg11-y.pth").exists()


def test_hash_mismatch_names_both_hashes_and_caches_nothing(server, tmp_path):
    handler, url = server
    handler.files["a.h5"] = b"corrupted" + PAYLOAD
    expected = _file("a.h5")
    actual = hashlib.md5(handler.files["a.h5"]).hexdigest()
    with pytest.raises(ValueError, match=f"expected md5 {expected.file_hash}, got {actual}"):
        W.fetch(expected, base_url=url, cache=str(tmp_path), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_truncated_transfer_caches_nothing(server, tmp_path):
    handler, url = server
    handler.files["a.h5"] = PAYLOAD
    handler.truncate.add("a.h5")
    with pytest.raises(W.WeightsDownloadError, match=r"truncated.*received 6000 of 12000 bytes"):
        W.fetch(_file("a.h5"), base_url=url, cache=str(tmp_path), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_server_down_names_the_url_and_the_cache_path(server, tmp_path):
    handler, url = server
    down = url.replace("/models", "").rsplit(":", 1)[0] + ":1/models"  # nothing listens on port 1
    with pytest.raises(W.WeightsDownloadError) as info:
        W.fetch(_file("a.h5"), base_url=down, cache=str(tmp_path), progress=False)
    assert f"{down}/a.h5" in str(info.value) and str(tmp_path / "a.h5") in str(info.value)
    with pytest.raises(W.WeightsDownloadError, match="404"):
        W.fetch(_file("missing.h5"), base_url=url, cache=str(tmp_path), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cached_file_with_wrong_hash_is_fetched_again(server, tmp_path):
    handler, url = server
    handler.files["a.h5"] = PAYLOAD
    (tmp_path / "a.h5").write_bytes(b"half a file")
    W.fetch(_file("a.h5"), base_url=url, cache=str(tmp_path), progress=False)
    assert (tmp_path / "a.h5").read_bytes() == PAYLOAD and len(handler.requests) == 1


def test_cache_dir_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(W.CACHE_ENV, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert W.cache_dir() == str(tmp_path / "kh" / "models")
    monkeypatch.setenv(W.CACHE_ENV, str(tmp_path / "mine"))
    assert W.cache_dir() == str(tmp_path / "mine")


def test_tag_end_to_end_through_env_overrides(server, tmp_path, monkeypatch):
    """weights="imagenet" for vgg11 -> torchvision entry -> download from the mirror -> loaded."""
    handler, url = server
    source = vgg_keras.build("vgg11", include_top=False, width_multiplier=0.125, input_shape=(32, 32, 3))
    state = {}
    for index, layer in zip((0, 3, 6, 8, 11, 13, 16, 18), [layer for layer in source.layers if "_conv" in layer.name]):
        kernel, bias = layer.get_weights()
        state[f"features.{index}.weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
        state[f"features.{index}.bias"] = bias
    data = save(state)
    prefix = hashlib.sha256(data).hexdigest()[:8]
    entry = W.resolve_weights("imagenet", "vgg11")
    mirrored = dataclasses.replace(
        entry, files=(W.WeightsFile(f"https://example.invalid/vgg11-{prefix}.pth", prefix, "sha256_prefix"),)
    )
    handler.files[f"vgg11-{prefix}.pth"] = data
    # The registry module is what resolve_weights reads (vgg_keras.weights re-exports it).
    monkeypatch.setattr(W.registry, "REGISTRY", tuple(mirrored if e is entry else e for e in W.REGISTRY))
    monkeypatch.setenv(W.BASE_URL_ENV, url)
    monkeypatch.setenv(W.CACHE_ENV, str(tmp_path))
    model = vgg_keras.VGG11(weights="imagenet", include_top=False, width_multiplier=0.125, input_shape=(32, 32, 3))
    for ours, theirs in zip(model.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    assert (tmp_path / f"vgg11-{prefix}.pth").exists() and len(handler.requests) == 1
