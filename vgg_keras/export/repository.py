"""The TF Serving model repository: `<root>/<model>/<version>/`, models.config, batching.

TF Serving watches `<base_path>/<version>/` directories and loads a version as soon as
its directory appears, so a version is written under a hidden temporary name in the same
folder and renamed into place only when complete; existing versions are never touched.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence

from vgg_keras.validation import check_int, reject

__all__ = [
    "MODELS_CONFIG",
    "BATCHING_PARAMETERS",
    "list_versions",
    "next_version",
    "write_version",
    "update_models_config",
    "batching_parameters_text",
    "write_batching_parameters",
]

MODELS_CONFIG = "models.config"
BATCHING_PARAMETERS = "batching_parameters.txt"
DEFAULT_BASE_PATH = "/models"
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_CONFIG_HEADER = (
    "# TF Serving model config (--model_config_file), written by vgg_keras.export.\n"
    "# Entries are kept as edited; exporting a new model appends its entry.\n"
)


def check_model_name(model_name: str) -> str:
    """Validates a model name (a directory name and a TF Serving model name).

    Raises:
        ValueError: If the name is empty or has characters other than letters, digits, `_.-`.
    """
    if not isinstance(model_name, str) or not _MODEL_NAME.match(model_name):
        raise ValueError(
            f"model_name={model_name!r}; allowed: letters, digits, '_', '.', '-' (starting with a letter or digit)."
        )
    return model_name


def list_versions(model_dir: str) -> list[int]:
    """The version numbers exported under `model_dir` (numeric sub-directories), ascending."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(
        int(name) for name in os.listdir(model_dir) if name.isdigit() and os.path.isdir(os.path.join(model_dir, name))
    )


def next_version(model_dir: str) -> int:
    """One more than the highest existing version (1 for a new model)."""
    versions = list_versions(model_dir)
    return versions[-1] + 1 if versions else 1


def write_version(model_dir: str, version: int | None, write: Callable[[str], None]) -> str:
    """Writes one version atomically: `write(tmp_dir)`, then renames it to `<model_dir>/<version>`.

    Args:
        model_dir: `<export_root>/<model_name>`.
        version: A positive int, or None for `next_version(model_dir)`.
        write: Fills the directory it is given (e.g. `tf.saved_model.save`).

    Returns:
        The version directory.

    Raises:
        ValueError: If `version` is not a positive int.
        FileExistsError: If the version directory exists (versions are never overwritten).
    """
    if version is None:
        version = next_version(model_dir)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"version={version!r}; allowed: a positive int, or None for the next free version.")
    target = os.path.join(model_dir, str(version))
    _refuse_existing(target)
    os.makedirs(model_dir, exist_ok=True)
    # A hidden, non-numeric name: TF Serving ignores it until the rename.
    staging = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=model_dir)
    try:
        write(staging)
        _refuse_existing(target)
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _refuse_existing(path: str) -> None:
    if os.path.exists(path):
        raise FileExistsError(
            f"Version directory {path} already exists; exported versions are never overwritten. "
            "Pass another version, or version=None for the next free one."
        )


# --------------------------------------------------------------------------- models.config


def _config_entry(model_name: str, base_path: str) -> str:
    return (
        "  config {\n"
        f'    name: "{model_name}"\n'
        f'    base_path: "{base_path}"\n'
        '    model_platform: "tensorflow"\n'
        "    model_version_policy { latest { num_versions: 1 } }\n"
        "  }\n"
    )


def configured_models(text: str) -> list[str]:
    """Model names of the `config { name: ... }` entries of a models.config text."""
    return re.findall(r'^\s*name:\s*"([^"]+)"', text, flags=re.MULTILINE)


def update_models_config(export_root: str, model_name: str, *, base_path_prefix: str = DEFAULT_BASE_PATH) -> str:
    """Adds `model_name` to `<export_root>/models.config`, creating the file if needed.

    Existing entries (hand edits, version policies, labels) are kept verbatim; a model
    that already has an entry is left as it is.

    Args:
        export_root: The model repository (mounted as `base_path_prefix` in the container).
        model_name: The model's directory under `export_root`.
        base_path_prefix: Where the server sees `export_root` (`/models` in the README's
            `docker run`).

    Returns:
        The path of models.config.

    Raises:
        ValueError: If an existing file has no `model_config_list { ... }` block.
    """
    path = os.path.join(export_root, MODELS_CONFIG)
    entry = _config_entry(check_model_name(model_name), f"{base_path_prefix.rstrip('/')}/{model_name}")
    if not os.path.exists(path):
        text = f"{_CONFIG_HEADER}model_config_list {{\n{entry}}}\n"
    else:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if model_name in configured_models(text):
            return path
        end = text.rfind("}")
        if "model_config_list" not in text or end < 0:
            raise ValueError(f"{path} has no 'model_config_list {{ ... }}' block; fix or delete the file.")
        text = text[:end] + entry + text[end:]
    _write_text(path, text)
    return path


def _write_text(path: str, text: str) -> None:
    # The server re-reads this file while running; replace it in one step.
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, encoding="utf-8", suffix=".tmp") as f:
        f.write(text)
    os.replace(f.name, path)


# --------------------------------------------------------------------------- batching


def batching_parameters_text(
    *,
    max_batch_size: int = 8,
    batch_timeout_micros: int = 0,
    max_enqueued_batches: int = 16,
    num_batch_threads: int = 4,
    allowed_batch_sizes: Sequence[int] | None = None,
) -> str:
    """A TF Serving `--batching_parameters_file` (BatchingParameters text proto).

    The defaults fit VGG16 on a CPU (the `tensorflow/serving` image): a batch only takes the
    requests already waiting (no timeout), since one image costs tens of milliseconds of
    compute, more than waiting for company could save; at most 8 images per batch, beyond
    which a CPU gains little throughput and each request waits for the whole batch; and a
    short queue, so that an overloaded server turns requests away at once rather than
    after seconds. Settings for a GPU: `savedmodels/README.md`.

    Args:
        max_batch_size: Most requests' images merged into one model call.
        batch_timeout_micros: How long a partial batch waits for more requests.
        max_enqueued_batches: Queue length before requests are rejected (back-pressure).
        num_batch_threads: Batches run in parallel (about the number of CPU cores).
        allowed_batch_sizes: Batch sizes a batch is padded up to (fewer distinct shapes: on a
            GPU, fewer kernel autotunings); increasing, the last one `max_batch_size`.
            None: batches keep their size.

    Returns:
        The file's text.

    Raises:
        ValueError: If a value is not a positive int (`batch_timeout_micros` may be 0) or
            `allowed_batch_sizes` does not increase up to `max_batch_size`.
    """
    values = dict(
        max_batch_size=max_batch_size,
        batch_timeout_micros=batch_timeout_micros,
        max_enqueued_batches=max_enqueued_batches,
        num_batch_threads=num_batch_threads,
    )
    for name, value in values.items():
        check_int(name, value, 0 if name == "batch_timeout_micros" else 1)
    lines = [f"{name} {{ value: {value} }}" for name, value in values.items()]
    if allowed_batch_sizes is not None:
        lines += [f"allowed_batch_sizes: {size}" for size in _checked_batch_sizes(allowed_batch_sizes, max_batch_size)]
    # Images of different sizes cannot be concatenated; the image signatures take
    # [B] strings, which batch without padding.
    lines.append("pad_variable_length_inputs: false")
    return "# TF Serving batching (--enable_batching --batching_parameters_file), written by vgg_keras.export.\n" + (
        "\n".join(lines) + "\n"
    )


def _checked_batch_sizes(sizes: Sequence[int], max_batch_size: int) -> list[int]:
    """`sizes` as a list, checked the way TF Serving checks them when it loads the file."""
    sizes = [check_int("allowed_batch_sizes", size) for size in sizes]
    if not sizes or sizes != sorted(set(sizes)) or sizes[-1] != max_batch_size:
        raise reject(
            "allowed_batch_sizes", sizes, f"strictly increasing sizes, the last one max_batch_size ({max_batch_size})"
        )
    return sizes


def write_batching_parameters(export_root: str, *, overwrite: bool = False, **parameters) -> str:
    """Writes `<export_root>/batching_parameters.txt` (kept as it is unless `overwrite`).

    Args:
        export_root: The model repository.
        overwrite: Replace an existing file (hand-tuned values are kept otherwise).
        **parameters: Arguments of `batching_parameters_text`.

    Returns:
        The file's path.
    """
    path = os.path.join(export_root, BATCHING_PARAMETERS)
    if overwrite or not os.path.exists(path):
        _write_text(path, batching_parameters_text(**parameters))
    return path
