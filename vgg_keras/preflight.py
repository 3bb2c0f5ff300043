"""Checks of what a run needs (files, folders, datasets), without importing TensorFlow.

The recipes call these before TensorFlow is imported, so a typo fails in a second with one
line naming the argument, and nothing is created on disk for a bad run. The library calls
the same checks (`vgg_keras.data.tfds_source` calls `check_imagenet`), so a notebook gets
the same messages.

ImageNet (`imagenet2012`) cannot be downloaded: TFDS prepares it from the archives a user
put in `manual_dir`, all splits at once, and afterwards reuses whatever it prepared. If
only `ILSVRC2012_img_val.tar` was there, the prepared dataset lacks the train split for
good; `check_imagenet` refuses to start that preparation for training and says which
folder to delete when it finds one.
"""

from __future__ import annotations

import glob
import json
import os
import re

__all__ = [
    "IMAGENET_ARCHIVES",
    "check_file",
    "check_folder",
    "check_imagenet",
    "check_model_spec",
    "check_source",
    "imagenet_manual_dir",
    "prepared_imagenet",
    "split_names",
    "tfds_data_dir",
]

# The archives TFDS' imagenet2012 builder reads from manual_dir, by split.
IMAGENET_ARCHIVES = {
    "train": "ILSVRC2012_img_train.tar",
    "validation": "ILSVRC2012_img_val.tar",
    "test": "ILSVRC2012_img_test.tar",
}
# Preparing for a split also needs these (training always validates).
_PREPARE_NEEDS = {"train": ("train", "validation"), "validation": ("validation",), "test": ("test",)}
_MODEL_FILE_SUFFIXES = (".keras", ".h5")


def _is_url(path: str) -> bool:
    return "://" in path  # gs://, s3://, ...: not checkable without tf.io.gfile


def _check_path(argument: str, path: str, exists, kind: str) -> str:
    if not _is_url(path) and not exists(path):
        raise FileNotFoundError(f"{argument}={path!r}: no such {kind}.")
    return path


def check_file(argument: str, path: str) -> str:
    """Fails unless `path` is an existing file (URLs are not checked).

    Args:
        argument: How the user gave it, e.g. "--model" or "config.classifier".
        path: The path.

    Returns:
        `path`.

    Raises:
        FileNotFoundError: Naming the argument and the path.
    """
    return _check_path(argument, path, os.path.isfile, "file")


def check_folder(argument: str, path: str) -> str:
    """`check_file` for a folder, e.g. `check_folder("--folder", path)`."""
    return _check_path(argument, path, os.path.isdir, "folder")


def check_model_spec(argument: str, spec: str) -> str:
    """A model spec is a `.keras`/`.h5` file or a model name; fails for a missing file.

    Args:
        argument: The flag, e.g. "--model".
        spec: Its value.

    Returns:
        `spec`.

    Raises:
        FileNotFoundError: If `spec` names a model file that does not exist.
    """
    if spec.endswith(_MODEL_FILE_SUFFIXES):
        check_file(argument, spec)
    return spec


def split_names(split: str) -> tuple[str, ...]:
    """The split names in a TFDS split spec: "train[:10%]+validation" -> ("train", "validation")."""
    return tuple(part.split("[", 1)[0].strip() for part in split.split("+"))


def tfds_data_dir(data_dir: str | None) -> str:
    """The TFDS data directory: `data_dir`, else `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`."""
    return data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def imagenet_manual_dir(data_dir: str | None, manual_dir: str | None) -> str:
    """Where the ImageNet archives are read from: `manual_dir`, else `<data_dir>/downloads/manual`."""
    return manual_dir or os.path.join(tfds_data_dir(data_dir), "downloads", "manual")


def _version(name: str) -> tuple[int, ...] | None:
    return tuple(int(n) for n in name.split(".")) if re.fullmatch(r"\d+\.\d+\.\d+", name) else None


def prepared_imagenet(data_dir: str | None) -> tuple[str, tuple[str, ...]] | None:
    """The newest prepared `imagenet2012` version folder and the splits it holds.

    Args:
        data_dir: TFDS data directory (`None`: TFDS' default).

    Returns:
        `(folder, split names)`, or `None` when no version was prepared there.
    """
    root = os.path.join(tfds_data_dir(data_dir), "imagenet2012")
    versions = [(v, n) for n in (os.listdir(root) if os.path.isdir(root) else ()) if (v := _version(n))]
    for _, name in sorted(versions, reverse=True):
        folder = os.path.join(root, name)
        info = os.path.join(folder, "dataset_info.json")
        if os.path.isfile(info):
            with open(info, encoding="utf-8") as handle:
                splits = tuple(split["name"] for split in json.load(handle).get("splits", ()))
            return folder, splits
    return None


def check_imagenet(split: str, data_dir: str | None = None, manual_dir: str | None = None) -> None:
    """Fails with one line if `imagenet2012` cannot give `split`.

    A prepared dataset is used as is; one prepared without a split it is asked for
    (a "half-prepared" dataset) must be deleted before it can be prepared again. An
    unprepared dataset needs the archives of the split in `manual_dir` (the train split
    also needs the validation archive: training validates, and TFDS prepares once).

    Args:
        split: TFDS split spec, e.g. "train" or "validation[:1000]".
        data_dir: TFDS data directory (`None`: TFDS' default).
        manual_dir: Where the archives are (`None`: `<data_dir>/downloads/manual`).

    Raises:
        FileNotFoundError: Naming the missing archive(s) and `manual_dir`, or the
            half-prepared folder to delete.
    """
    wanted = split_names(split)
    unknown = [name for name in wanted if name not in IMAGENET_ARCHIVES]
    if unknown:
        raise ValueError(
            f"split={split!r}: imagenet2012 has no split {unknown[0]!r}; allowed: {', '.join(IMAGENET_ARCHIVES)}."
        )
    if _is_url(tfds_data_dir(data_dir)):
        return
    manual = imagenet_manual_dir(data_dir, manual_dir)
    prepared = prepared_imagenet(data_dir)
    if prepared is not None:
        folder, splits = prepared
        missing = [name for name in wanted if name not in splits]
        if missing:
            raise FileNotFoundError(
                f"imagenet2012 in {folder} was prepared without its {missing[0]!r} split "
                f"({IMAGENET_ARCHIVES[missing[0]]} was not in manual_dir then) and TFDS will not add it: "
                f"delete {folder} and rerun with {_archive_list(missing[0])} in manual_dir ({manual})."
            )
        return
    needed = sorted({archive for name in wanted for archive in _PREPARE_NEEDS[name]}, key=list(IMAGENET_ARCHIVES).index)
    absent = [
        IMAGENET_ARCHIVES[name] for name in needed if not os.path.isfile(os.path.join(manual, IMAGENET_ARCHIVES[name]))
    ]
    if absent:
        where = manual if os.path.isdir(manual) else f"{manual}, which does not exist"
        raise FileNotFoundError(
            f"imagenet2012 is not prepared in {tfds_data_dir(data_dir)} and {' and '.join(absent)} "
            f"{'is' if len(absent) == 1 else 'are'} missing from manual_dir ({where}): download "
            f"{'it' if len(absent) == 1 else 'them'} from https://image-net.org/download-images into that folder, "
            "or set manual_dir to where the archives are."
        )


def _archive_list(split: str) -> str:
    return " and ".join(IMAGENET_ARCHIVES[name] for name in _PREPARE_NEEDS[split])


def check_source(name: str, split: str, data_dir: str | None = None, manual_dir: str | None = None) -> None:
    """The checks `vgg_keras.data.get_source(name, split, ...)` can have done without TensorFlow.

    Folder sources need their folder, TFRecord sources at least one matching file,
    `imagenet2012` its archives or prepared data (see `check_imagenet`). Other TFDS names
    are checked when they are opened.

    Args:
        name: The source name, as `get_source` takes it.
        split: The split.
        data_dir: TFDS data directory.
        manual_dir: TFDS manual-download directory.

    Raises:
        FileNotFoundError: If the data is not there.
        ValueError: For an empty name or a prefix without a path.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"dataset name must be a non-empty string, got {name!r}.")
    if name.startswith("folder:"):
        root = name[len("folder:") :]
        if root and not _is_url(root) and not os.path.isdir(root):
            raise FileNotFoundError(
                f"dataset {name!r}: no such folder {root!r} (expected <folder>/<class>/<image> "
                f"or <folder>/{split}/<class>/<image>)."
            )
    elif name.startswith("tfrecord:"):
        pattern = name[len("tfrecord:") :].replace("{split}", split)
        if pattern and not _is_url(pattern) and not glob.glob(pattern):
            raise FileNotFoundError(f"dataset {name!r}: no file matches {pattern!r}.")
    elif name.split(":", 1)[0] == "imagenet2012":
        check_imagenet(split, data_dir, manual_dir)
