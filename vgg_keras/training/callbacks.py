"""Callbacks of a training run: step-exact resumable backups, best checkpoint, curves.

`ResumableBackup` extends `keras.callbacks.BackupAndRestore` (which saves the model *and*
the optimiser state: momentum buffers, `iterations`, the learning-rate variable) with what
it lacks for a run killed mid-epoch: the state of other callbacks (the plateau schedule,
the best checkpoint's best value), an explicit `restore()` that returns the global step so
the trainer can finish the interrupted epoch instead of replaying it, and a refusal to
back up a state whose loss or weights are NaN/Inf (training stops instead), so the last
good backup survives.
"""

from __future__ import annotations

import csv
import json
import math
import os

import keras

__all__ = ["BestCheckpoint", "CurvePlot", "NaNGuard", "ResumableBackup", "truncate_csv"]

_STATE_FILE = "callback_state.json"


def _write_json_atomically(path: str, payload: dict) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(payload, handle)
    os.replace(temporary, path)


def _finite_loss(logs) -> bool:
    loss = (logs or {}).get("loss")
    return loss is None or math.isfinite(float(loss))


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """Backs up model, optimiser and callback state every `save_freq` steps and at epoch ends.

    Backups at an epoch's last step are taken after the epoch-end callbacks ran (validation,
    plateau schedule), so a backup always describes a consistent point: `step` optimizer
    updates done and `epochs_done` epochs fully closed.

    Args:
        backup_dir: Directory of the backup (used by nothing else).
        save_freq: Back up every this many training steps.
        steps_per_epoch: Steps of one epoch (to recognise epoch boundaries).
        stateful: Name -> object with `get_state()` / `set_state(dict)` saved with the backup.
    """

    def __init__(self, backup_dir: str, save_freq: int, steps_per_epoch: int, stateful: dict | None = None):
        super().__init__(backup_dir, save_freq=save_freq, double_checkpoint=True, delete_checkpoint=False)
        self.steps_per_epoch = steps_per_epoch
        self.stateful = dict(stateful or {})
        self.epochs_done = 0
        self.failure = None
        self._state_path = os.path.join(backup_dir, _STATE_FILE)

    def _step(self) -> int:
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    @staticmethod
    def exists(backup_dir: str) -> bool:
        """Whether `backup_dir` holds a backup (latest or previous) to resume from."""
        latest = os.path.join(backup_dir, "latest.weights.h5")
        return os.path.exists(latest) or os.path.exists(f"{latest}.bkp")

    def restore(self, model: keras.Model) -> int:
        """Loads the latest (or, if it is damaged, the previous) backup into `model`.

        Args:
            model: The compiled model (its optimizer is built here if needed).

        Returns:
            The global step restored (0 when there is no backup).
        """
        self.set_model(model)
        if not self.exists(self.backup_dir):
            return 0
        super().on_train_begin()  # loads weights + optimizer, falls back to the .bkp copy
        model._initial_epoch = None  # the trainer derives the epoch from the step instead
        step = self._step()
        for path in (self._state_path, f"{self._state_path}.bkp"):
            if os.path.exists(path):
                with open(path, encoding="utf-8") as handle:
                    state = json.load(handle)
                if state["step"] == step:
                    self.epochs_done = state["epochs_done"]
                    for name, obj in self.stateful.items():
                        obj.set_state(state["callbacks"][name])
                    return step
        # Callback state lost: derive what can be derived; the schedule restarts its counters.
        self.epochs_done = step // self.steps_per_epoch
        return step

    def on_train_begin(self, logs=None):
        if not self.model.built:
            raise ValueError("ResumableBackup needs a built model; call restore() before fit.")

    def _weights_finite(self) -> bool:
        return all(bool(keras.ops.all(keras.ops.isfinite(w))) for w in self.model.trainable_weights)

    def _save_model(self):
        # A NaN/Inf can reach the weights while the reported loss is still finite (it shows
        # one step later); checking costs about as much as reading them for the backup.
        if not self._weights_finite():
            self.failure = {"step": self._step()}
            self.model.stop_training = True
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        if os.path.exists(self._state_path):
            os.replace(self._state_path, f"{self._state_path}.bkp")
        state = {
            "step": self._step(),
            "epochs_done": self.epochs_done,
            "callbacks": {name: obj.get_state() for name, obj in self.stateful.items()},
        }
        _write_json_atomically(self._state_path, state)
        super()._save_model()

    def on_train_batch_end(self, batch, logs=None):
        if not _finite_loss(logs):
            return
        # An epoch's last step is backed up by on_epoch_end, after validation and the schedule.
        if self._should_save_on_batch(batch) and self._step() % self.steps_per_epoch:
            self._save_model()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_done = epoch + 1
        if _finite_loss(logs):
            self._save_model()

    def on_train_end(self, logs=None):
        pass  # keep the backup: rerunning a finished command then does nothing


class BestCheckpoint(keras.callbacks.ModelCheckpoint):
    """`ModelCheckpoint(save_best_only=True)` whose best value survives a resume."""

    def __init__(self, filepath: str, monitor: str = "val_accuracy", verbose: int = 0):
        mode = "max" if "acc" in monitor else "min"
        super().__init__(filepath, monitor=monitor, save_best_only=True, mode=mode, verbose=verbose)

    def on_epoch_end(self, epoch, logs=None):
        if all(math.isfinite(float(v)) for k, v in (logs or {}).items() if k.endswith("loss")):
            super().on_epoch_end(epoch, logs)  # never a model with NaN/Inf losses as "best"

    def get_state(self) -> dict:
        """The best monitored value so far."""
        return {"best": None if self.best is None else float(self.best)}

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


def truncate_csv(path: str, epochs: int) -> None:
    """Drops rows of epochs >= `epochs` from a CSVLogger file (they will be logged again).

    Args:
        path: The CSV file (nothing happens if it does not exist).
        epochs: Number of epochs to keep.
    """
    if not os.path.exists(path):
        return
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return
    kept = [rows[0]] + [row for row in rows[1:] if row and int(row[0]) < epochs]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(kept)


def read_csv_history(path: str) -> dict[str, list[float]]:
    """Reads a CSVLogger file into `{column: values}` (empty dict if missing)."""
    if not os.path.exists(path):
        return {}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {key: [float(row[key]) for row in rows if row.get(key) not in (None, "")] for key in (rows[0] if rows else {})}


def plot_history(history: dict[str, list[float]], path: str) -> str:
    """Plots loss, accuracy and learning-rate curves per epoch into a PNG.

    Args:
        history: `{metric: per-epoch values}` with "epoch" and e.g. "loss", "val_loss",
            "accuracy", "val_accuracy", "learning_rate".
        path: The PNG to write.

    Returns:
        `path`.
    """
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel

    epochs = [e + 1 for e in history.get("epoch", [])]
    panels = (("loss", ("loss", "val_loss")), ("accuracy", ("accuracy", "val_accuracy")),
              ("learning rate", ("learning_rate",)))
    figure, axes = pyplot.subplots(1, 3, figsize=(13, 3.6))
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
    figure.savefig(path, dpi=90)
    pyplot.close(figure)
    return path


class CurvePlot(keras.callbacks.Callback):
    """Redraws the PNG of the training curves from the CSV log after every epoch."""

    def __init__(self, csv_path: str, png_path: str):
        super().__init__()
        self.csv_path, self.png_path = csv_path, png_path

    def on_epoch_end(self, epoch, logs=None):
        history = read_csv_history(self.csv_path)
        if history:
            plot_history(history, self.png_path)
