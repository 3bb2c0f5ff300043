"""Callbacks of a training run: step-exact resumable backups, best checkpoint, metrics, curves.

Everything here that writes a file goes through `write_atomically` (a temporary file in the
same directory, fsync, rename), so a SIGKILL at any instant leaves either the previous
complete file or the new one. `metrics.csv` is the exception by design: rows are appended
(one `write` per row, fsync), never rewritten in place; `repair_csv` drops a partly written
last row and the rows a resumed run will log again, by writing a new file and renaming it.

`ResumableBackup` saves what a run killed mid-epoch needs to continue exactly as if it had
not been stopped: the weights and optimiser state (momentum buffers, `iterations`, the
learning-rate variable), the random-generator state of dropout, the running sums of the
epoch's metrics, and the state of other callbacks (the plateau schedule, the best
checkpoint's best value). It refuses to back up a state whose loss or weights are NaN/Inf
(training stops instead), so the last good backup survives.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import math
import os
from collections.abc import Callable

import keras
import numpy as np

__all__ = [
    "BestCheckpoint",
    "CurvePlot",
    "MetricsCSV",
    "NaNGuard",
    "ResumableBackup",
    "read_csv_history",
    "remove_temporaries",
    "repair_csv",
    "write_atomically",
    "write_json_atomically",
]

_STATE_FILE = "callback_state.json"
_WEIGHTS_FILE = "latest.weights.h5"
# The previous backup keeps a Keras-loadable name (`load_weights` needs ".weights.h5").
_PREVIOUS = {_STATE_FILE: "previous_callback_state.json", _WEIGHTS_FILE: "previous.weights.h5"}
_TEMPORARY_PREFIX = ".tmp-"


# --------------------------------------------------------------------------- atomic writes


def _fsync_path(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(path: str, write: Callable[[str], None], fsync: bool = True) -> str:
    """Calls `write(temporary)` and renames the temporary file to `path`.

    The one place where training writes its files. The temporary file sits in the same
    directory (a rename is atomic only within a file system) and keeps `path`'s ending, so
    writers that check it (Keras' `.keras`, `.weights.h5`) accept it. A kill before the
    rename leaves the previous `path` untouched and a `.tmp-*` file that
    `remove_temporaries` deletes on the next start.

    Args:
        path: The file to write.
        write: Writes the complete file to the path it is given.
        fsync: Flush the file (and the directory entry) to disk before/after the rename,
            so a power loss cannot leave an empty `path` either.

    Returns:
        `path`.
    """
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f"{_TEMPORARY_PREFIX}{os.getpid()}-{name}")
    try:
        write(temporary)
        if fsync:
            _fsync_path(temporary)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
    if fsync:
        _fsync_path(directory)
    return path


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)


def write_json_atomically(path: str, payload, **dump_kwargs) -> str:
    """`json.dump(payload)` into `path` through `write_atomically`.

    Args:
        path: The JSON file.
        payload: Anything `json.dumps` accepts.
        **dump_kwargs: Passed to `json.dumps` (e.g. `indent=2, sort_keys=True`).

    Returns:
        `path`.
    """
    text = json.dumps(payload, **dump_kwargs)
    return write_atomically(path, lambda temporary: _write_text(temporary, text))


def remove_temporaries(directory: str) -> list[str]:
    """Deletes the `.tmp-*` files a killed `write_atomically` left in `directory`.

    Args:
        directory: A directory (nothing happens if it does not exist).

    Returns:
        The paths removed.
    """
    if not os.path.isdir(directory):
        return []
    removed = []
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name.startswith(_TEMPORARY_PREFIX) and os.path.isfile(path):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
                removed.append(path)
    return removed


def read_json(path: str):
    """The JSON in `path`, or None when it is missing, empty or not valid JSON."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _finite_loss(logs) -> bool:
    loss = (logs or {}).get("loss")
    return loss is None or math.isfinite(float(loss))


# --------------------------------------------------------------------------- backups


def _rng_variables(model: keras.Model) -> list:
    """Variables the weights file lacks but an exact resume needs: dropout's RNG states."""
    saved = {id(v) for v in model.weights}
    metric = {id(v) for metric in model.metrics for v in metric.variables}
    return [v for v in model.variables if id(v) not in saved and id(v) not in metric]


def _metric_variables(model: keras.Model) -> list:
    """The running sums of the epoch's loss and metrics (built by `fit`)."""
    return [v for metric in model.metrics for v in metric.variables]


def _variable_values(variables) -> dict:
    return {v.path: np.asarray(keras.ops.convert_to_numpy(v)).tolist() for v in variables}


def _assign_in_order(variables, values: list, what: str) -> None:
    """Assigns saved values by position (the layers' order; their names vary per process)."""
    if len(values) != len(variables) or any(np.shape(x) != tuple(v.shape) for v, x in zip(variables, values)):
        logging.warning("The backup's %s do not fit this model; not restored.", what)
        return
    for v, x in zip(variables, values):
        v.assign(np.asarray(x, dtype=v.dtype))


class ResumableBackup(keras.callbacks.Callback):
    """Backs up model, optimiser and callback state every `save_freq` steps and at epoch ends.

    Backups at an epoch's last step are taken after the epoch-end callbacks ran (validation,
    plateau schedule), so a backup always describes a consistent point: `step` optimizer
    updates done and `epochs_done` epochs fully closed. A backup is a pair of files,
    `latest.weights.h5` and `callback_state.json` (both carry the step), each written
    atomically; the previous pair is kept as `previous.weights.h5` and
    `previous_callback_state.json` until the new one is complete, and `restore` takes the
    newest pair whose steps agree.

    Args:
        backup_dir: Directory of the backup (used by nothing else).
        save_freq: Back up whenever the global step reaches a multiple of this.
        steps_per_epoch: Steps of one epoch (to recognise epoch boundaries).
        stateful: Name -> object with `get_state()` / `set_state(dict)` saved with the backup.
    """

    def __init__(self, backup_dir: str, save_freq: int, steps_per_epoch: int, stateful: dict | None = None):
        super().__init__()
        if isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1:
            raise ValueError(f"save_freq={save_freq!r}; allowed: a positive integer.")
        self.backup_dir, self.save_freq, self.steps_per_epoch = backup_dir, save_freq, steps_per_epoch
        self.stateful = dict(stateful or {})
        self.epochs_done = 0
        self.failure = None
        self.saved_step = 0  # the step of the newest backup on disk (0: none)
        self._weights_path = os.path.join(backup_dir, _WEIGHTS_FILE)
        self._state_path = os.path.join(backup_dir, _STATE_FILE)
        self._metric_sums = None  # saved when resuming mid-epoch, added after its first step

    def _step(self) -> int:
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    @staticmethod
    def exists(backup_dir: str) -> bool:
        """Whether `backup_dir` holds a backup (latest or previous) to resume from."""
        return any(os.path.exists(os.path.join(backup_dir, name)) for name in (_WEIGHTS_FILE, _PREVIOUS[_WEIGHTS_FILE]))

    @staticmethod
    def _previous(path: str) -> str:
        directory, name = os.path.split(path)
        return os.path.join(directory, _PREVIOUS[name])

    def _candidates(self):
        """(weights, state) pairs, newest first; a pair counts only if its steps agree."""
        states = [read_json(path) for path in (self._state_path, self._previous(self._state_path))]
        for weights in (self._weights_path, self._previous(self._weights_path)):
            if os.path.exists(weights):
                yield weights, [s for s in states if isinstance(s, dict) and "step" in s]

    def _load(self, model: keras.Model, weights: str) -> bool:
        try:
            model.load_weights(weights)
        except Exception as error:  # noqa: BLE001  (h5py raises OSError, KeyError, ValueError...)
            logging.warning(
                "Backup %s is unreadable (%s: %s); trying the previous one.", weights, type(error).__name__, error
            )
            return False
        return True

    def restore(self, model: keras.Model) -> int:
        """Loads the newest consistent backup into `model`.

        Args:
            model: The compiled model with a built optimizer.

        Returns:
            The global step restored (0 when there is no backup).
        """
        self.set_model(model)
        fallback = None
        for weights, states in self._candidates():
            if not self._load(model, weights):
                continue
            step = self._step()
            for state in states:
                if state["step"] == step:
                    self._apply_state(state)
                    return step
            fallback = fallback or weights
        if fallback is None:
            return 0
        # The callback state is lost: derive what can be derived; the schedule restarts its
        # counters and the interrupted epoch's metrics average only its remaining steps.
        self._load(model, fallback)
        self.saved_step = self._step()
        self.epochs_done = self.saved_step // self.steps_per_epoch
        logging.warning("Backup state of step %d not found: resuming without the schedule's state.", self.saved_step)
        return self.saved_step

    def _apply_state(self, state: dict) -> None:
        self.saved_step = state["step"]
        self.epochs_done = state["epochs_done"]
        for name, obj in self.stateful.items():
            obj.set_state(state["callbacks"][name])
        if "rng" in state:
            _assign_in_order(_rng_variables(self.model), state["rng"], "random-generator states")
        if self.saved_step % self.steps_per_epoch:
            self._metric_sums = state.get("metrics")

    def _add_metric_sums(self) -> None:
        """Adds the saved sums of the resumed epoch's earlier steps to the running metrics.

        `fit` resets the metrics when an epoch begins and builds the compiled ones only in
        the first step, so the sums are added after it: the trainer's metrics are all means
        (a total and a count), and float addition being commutative, the epoch's row then
        averages over all its steps exactly as in an uninterrupted run.
        """
        values, self._metric_sums = self._metric_sums, None
        variables = _metric_variables(self.model)
        if any(v.path not in values for v in variables):
            logging.warning(
                "The backup's metric sums do not fit this model; the resumed epoch's "
                "metrics average only its remaining steps."
            )
            return
        for v in variables:
            v.assign_add(np.asarray(values[v.path], dtype=v.dtype))

    def _weights_finite(self) -> bool:
        return all(bool(keras.ops.all(keras.ops.isfinite(w))) for w in self.model.trainable_weights)

    def _state(self) -> dict:
        return {
            "step": self._step(),
            "epochs_done": self.epochs_done,
            "callbacks": {name: obj.get_state() for name, obj in self.stateful.items()},
            "rng": [np.asarray(keras.ops.convert_to_numpy(v)).tolist() for v in _rng_variables(self.model)],
            "metrics": _variable_values(_metric_variables(self.model)),
        }

    def save(self) -> None:
        """Writes a backup of the current state (skipped, and training stopped, if not finite)."""
        # A NaN/Inf can reach the weights while the reported loss is still finite (it shows
        # one step later); checking costs about as much as reading them for the backup.
        if not self._weights_finite():
            self.failure = {"step": self._step()}
            self.model.stop_training = True
            return
        state = self._state()
        staged = os.path.join(self.backup_dir, f"{_TEMPORARY_PREFIX}staged-{_WEIGHTS_FILE}")
        write_atomically(staged, self.model.save_weights)
        # The latest pair becomes the previous one by renames once the new weights are on disk;
        # a kill between any two steps leaves a pair whose steps agree (see `restore`). A
        # weights file without its state (killed before the state was written) is replaced.
        if os.path.exists(self._state_path):
            for path in (self._weights_path, self._state_path):
                if os.path.exists(path):
                    os.replace(path, self._previous(path))
        os.replace(staged, self._weights_path)
        write_json_atomically(self._state_path, state)
        self.saved_step = state["step"]

    def on_train_batch_end(self, batch, logs=None):
        if self._metric_sums is not None:
            self._add_metric_sums()
        if not _finite_loss(logs):
            return
        step = self._step()
        # An epoch's last step is backed up by on_epoch_end, after validation and the schedule.
        if step % self.save_freq == 0 and step % self.steps_per_epoch:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_done = epoch + 1
        if _finite_loss(logs):
            self.save()


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the model (atomically) whenever `monitor` improves; the best value survives a resume.

    Args:
        filepath: The `.keras` file.
        monitor: A metric of the epoch logs, e.g. "val_accuracy" (higher is better) or "val_loss".
    """

    def __init__(self, filepath: str, monitor: str = "val_accuracy"):
        super().__init__()
        self.filepath, self.monitor = filepath, monitor
        self.mode = "max" if "acc" in monitor else "min"
        self.best = None

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not all(math.isfinite(float(v)) for k, v in logs.items() if k.endswith("loss")):
            return  # never a model with NaN/Inf losses as "best"
        value = logs.get(self.monitor)
        if value is not None and math.isfinite(float(value)) and self._improved(float(value)):
            self.best = float(value)
            write_atomically(self.filepath, self.model.save)

    def get_state(self) -> dict:
        """The best monitored value so far."""
        return {"best": self.best}

    def set_state(self, state: dict) -> None:
        """Restores what `get_state` returned."""
        self.best = state["best"]


class NaNGuard(keras.callbacks.TerminateOnNaN):
    """`TerminateOnNaN` that remembers where the loss went bad (epoch, batch, loss)."""

    def __init__(self):
        super().__init__()
        self.failure = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):
        if not _finite_loss(logs) and self.failure is None:
            self.failure = {"epoch": self._epoch, "batch": batch, "loss": float(logs["loss"])}
        super().on_batch_end(batch, logs)


class MetricsCSV(keras.callbacks.Callback):
    """Appends one row per epoch to a CSV file (epoch, then the logs' keys in sorted order).

    Each row is written with a single `write` and fsynced, so a kill leaves at most one
    partial last line, which `repair_csv` removes on the next start. Columns come from the
    file's header when it exists (a resumed run), else from the first epoch's logs. Floats
    are written with `repr`, which reads back to the same float.

    Args:
        path: The CSV file.
    """

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def _columns(self, logs: dict) -> tuple[list[str], bool]:
        if os.path.exists(self.path) and os.path.getsize(self.path):
            with open(self.path, newline="", encoding="utf-8") as handle:
                return next(csv.reader(handle)), False
        return ["epoch"] + sorted(logs), True

    def on_epoch_end(self, epoch, logs=None):
        values = {key: float(value) for key, value in (logs or {}).items()}
        columns, new_file = self._columns(values)
        values["epoch"] = epoch
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if new_file:
            writer.writerow(columns)
        writer.writerow([repr(values[c]) if c in values else "" for c in columns])
        with open(self.path, "a", encoding="utf-8", newline="") as handle:
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())


def repair_csv(path: str, epochs: int) -> None:
    """Keeps the header and the complete rows of epochs < `epochs` of a `MetricsCSV` file.

    A partly written last row (a kill while appending) and rows a resumed run will log again
    are dropped by writing a new file and renaming it; the file is untouched otherwise.

    Args:
        path: The CSV file (nothing happens if it does not exist).
        epochs: Number of epochs to keep.
    """
    if not os.path.exists(path):
        return
    with open(path, newline="", encoding="utf-8") as handle:
        text = handle.read()
    lines = text.split("\n")
    complete = lines[:-1]  # the text after the last newline is a partial row (or empty)
    rows = list(csv.reader(complete))
    header = rows[0] if rows else []
    if not header or header[0] != "epoch":
        kept = []
    else:
        kept = [header] + [row for row in rows[1:] if len(row) == len(header) and _epoch(row) < epochs]
    if len(kept) == len(rows) and not lines[-1]:
        return
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(kept)
    write_atomically(path, lambda temporary: _write_text(temporary, buffer.getvalue()))


def _epoch(row: list[str]) -> float:
    try:
        return float(row[0])
    except ValueError:
        return math.inf


def read_csv_history(path: str) -> dict[str, list[float]]:
    """Reads a CSVLogger file into `{column: values}` (empty dict if missing)."""
    if not os.path.exists(path):
        return {}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {
        key: [float(row[key]) for row in rows if row.get(key) not in (None, "")] for key in (rows[0] if rows else {})
    }


def plot_history(history: dict[str, list[float]], path: str) -> str:
    """Plots loss, accuracy and learning-rate curves per epoch into a PNG, written atomically.

    Drawn without pyplot (`vgg_keras._figures`): the caller's matplotlib backend stays as it
    is and no figure is left open.

    Args:
        history: `{metric: per-epoch values}` with "epoch" and e.g. "loss", "val_loss",
            "accuracy", "val_accuracy", "learning_rate".
        path: The PNG to write.

    Returns:
        `path`.
    """
    # Imported here: matplotlib is heavy, and _figures imports this module.
    from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel

    from vgg_keras._figures import save_figure  # pylint: disable=import-outside-toplevel

    epochs = [e + 1 for e in history.get("epoch", [])]
    panels = (
        ("loss", ("loss", "val_loss")),
        ("accuracy", ("accuracy", "val_accuracy")),
        ("learning rate", ("learning_rate",)),
    )
    figure = Figure(figsize=(13, 3.6))
    axes = figure.subplots(1, 3)
    for axis, (title, keys) in zip(axes, panels):
        for key in keys:
            values = history.get(key, [])
            if values and len(values) == len(epochs):
                axis.plot(epochs, values, marker=".", label=key)
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.legend(loc="best") if axis.lines else None
    axes[2].set_yscale("log") if axes[2].lines else None
    figure.tight_layout()
    return save_figure(figure, path, dpi=90, tight=False)


class CurvePlot(keras.callbacks.Callback):
    """Redraws the PNG of the training curves from the CSV log after every epoch."""

    def __init__(self, csv_path: str, png_path: str):
        super().__init__()
        self.csv_path, self.png_path = csv_path, png_path

    def on_epoch_end(self, epoch, logs=None):
        history = read_csv_history(self.csv_path)
        if history:
            plot_history(history, self.png_path)
