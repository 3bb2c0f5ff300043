"""Download, verify and cache published weights files (a temporary name, renamed once verified)."""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request

from vgg_keras.weights.registry import WeightsFile

CACHE_ENV = "VGG_KERAS_CACHE"
BASE_URL_ENV = "VGG_KERAS_WEIGHTS_URL"


class WeightsDownloadError(OSError):
    """A published weights file could not be downloaded (network, HTTP or truncated transfer)."""


def cache_dir() -> str:
    """Where downloads are cached: $VGG_KERAS_CACHE, else $KERAS_HOME/models (~/.keras/models)."""
    if os.environ.get(CACHE_ENV):
        return os.path.expanduser(os.environ[CACHE_ENV])
    keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return os.path.join(keras_home, "models")


def _file_digest(path: str, kind: str) -> str:
    digest = hashlib.md5() if kind == "md5" else hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _hash_matches(actual: str, file: WeightsFile) -> bool:
    expected = file.file_hash.lower()
    return actual.startswith(expected) if file.hash_kind == "sha256_prefix" else actual == expected


def _url(file: WeightsFile, base_url: str | None) -> str:
    base = base_url or os.environ.get(BASE_URL_ENV)
    return f"{base.rstrip('/')}/{file.filename}" if base else file.url


def _copy_url(url: str, out, progress: bool) -> None:
    """Streams `url` into `out` with a progress bar; raises on a short transfer."""
    from tqdm.auto import tqdm

    with urllib.request.urlopen(url, timeout=60) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length else None
        received = 0
        with tqdm(
            total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=url.rsplit("/", 1)[-1], disable=not progress
        ) as bar:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise WeightsDownloadError(f"truncated transfer: received {received} of {total} bytes")


def _download(url: str, target: str, file: WeightsFile, progress: bool) -> None:
    fd, partial = tempfile.mkstemp(dir=os.path.dirname(target), prefix=file.filename + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                _copy_url(url, out, progress)
            except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
                raise WeightsDownloadError(
                    f"Could not download {url}: {error}. Without network access, download the file elsewhere "
                    f"and place it at {target} ({file.hash_kind} {file.file_hash})."
                ) from error
        actual = _file_digest(partial, file.hash_kind)
        if not _hash_matches(actual, file):
            raise ValueError(
                f"Hash mismatch for {url}: expected {file.hash_kind} {file.file_hash}, got {actual}. "
                f"The download was discarded; nothing was written to {target}."
            )
        os.replace(partial, target)  # only a verified file ever gets the cached name
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def fetch(file: WeightsFile, *, base_url: str | None = None, cache: str | None = None, progress: bool = True) -> str:
    """Returns the local path of a verified copy of `file`, downloading it if needed.

    A cached file is used only if its hash matches; otherwise it is downloaded again.

    Args:
        file: The file to fetch.
        base_url: Replaces the published URL's directory (default: $VGG_KERAS_WEIGHTS_URL
            or the published URL).
        cache: The cache directory (default: `cache_dir()`).
        progress: Whether to show a progress bar.

    Returns:
        The path of the verified file in the cache.

    Raises:
        WeightsDownloadError: If the download fails; the message names the URL and the
            path where the file can be placed by hand.
        ValueError: If the downloaded file's hash does not match (nothing is cached).
    """
    directory = cache or cache_dir()
    os.makedirs(directory, exist_ok=True)
    target = os.path.join(directory, file.filename)
    if os.path.isfile(target) and _hash_matches(_file_digest(target, file.hash_kind), file):
        return target
    _download(_url(file, base_url), target, file, progress)
    return target
