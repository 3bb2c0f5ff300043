"""Workdirs that survive SIGKILL at any instant, exact resume, recovery from a NaN stop.

The kill test runs the trainer in child processes that SIGKILL themselves at chosen points
inside the trainer's writes (before a temporary file is renamed into place, half-way
through a metrics row, between the renames of a backup), reruns the same command after
each kill, and compares the finished workdir with an uninterrupted run's: every metrics
row and every weight bit-identical (CPU kernels here are deterministic).
"""

import csv
import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

from vgg_keras import training
from vgg_keras.training import callbacks as callbacks_lib

from test_training import tiny_config


def resume_config():
    """The tiny 3-epoch run of these tests, with dropout (its RNG state must resume too)."""
    config = tiny_config(epochs=3, steps_per_epoch=6)
    config.model.dropout = 0.5
    return config


def _train(workdir, config=None):
    data = training.synthetic_training_data(num_classes=4, image_size=32, batch_size=16)
    return training.train_with_data(config or resume_config(), str(workdir), data)


_CHILD = r'''
import builtins, json, os, signal, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
args = json.loads(sys.argv[1])
import numpy as np
from vgg_keras import training
from test_training_resume import resume_config

kill_at, count = args["kill_at"], [0]


def hit(name):
    """SIGKILLs this process at the `kill_at` point's n-th occurrence."""
    if kill_at and name == kill_at[0]:
        count[0] += 1
        if count[0] == kill_at[1]:
            os.kill(os.getpid(), signal.SIGKILL)


real_replace, real_open = os.replace, builtins.open


def replace(src, dst):
    hit("replace:" + os.path.basename(dst))  # the temporary file is complete, not yet in place
    real_replace(src, dst)
    hit("replaced:" + os.path.basename(dst))


class HalfWrites:
    """A file whose writes stop half-way once (a kill while a metrics row is appended)."""

    def __init__(self, handle):
        self._handle = handle

    def write(self, text):
        self._handle.write(text[: len(text) // 2])
        self._handle.flush()
        hit("half-row")
        return self._handle.write(text[len(text) // 2:])

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._handle.__exit__(*exc)


def open_(file, mode="r", *a, **k):
    handle = real_open(file, mode, *a, **k)
    return HalfWrites(handle) if str(file).endswith("metrics.csv") and "a" in mode else handle


os.replace, builtins.open = replace, open_
config = resume_config()
config.training.verbose = 1
data = training.synthetic_training_data(num_classes=4, image_size=32, batch_size=16)
result = training.train_with_data(config, args["workdir"], data)
np.savez(args["workdir"] + "-weights.npz", *[w.numpy() for w in result.model.weights])
'''


def _weights(path):
    arrays = np.load(path)
    return [arrays[k] for k in sorted(arrays.files, key=lambda k: int(k.split("_")[1]))]


def _run_child(tmp_path, workdir, kill_at=None):
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")]))
    args = json.dumps({"workdir": str(workdir), "kill_at": kill_at})
    return subprocess.run([sys.executable, str(script), args], capture_output=True, text=True, env=env, timeout=300)


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


# Each rerun is killed at a later point of the same run: before each kind of file is
# renamed into place, half-way through a metrics row, between the renames of a backup.
KILL_POINTS = [
    ("replace:config.json", 1),
    ("half-row", 1),  # epoch 1's metrics row half written
    ("replaced:latest.weights.h5.bkp", 2),  # the previous backup moved aside, the new not in place
    ("replace:callback_state.json", 2),  # new backup weights in place, their state not yet
    ("replace:model.keras", 1),  # (best.keras, curves.png: the same `write_atomically`)
]


@pytest.mark.slow
def test_sigkill_during_any_write_then_rerun_finishes_exactly_like_an_uninterrupted_run(tmp_path):
    reference = _train(tmp_path / "reference")
    workdir = tmp_path / "killed"
    for point in KILL_POINTS:
        killed = _run_child(tmp_path, workdir, list(point))
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-3000:])
        if (workdir / "config.json").exists():  # absent, or complete: never empty or partial
            assert json.load(open(workdir / "config.json"))["training"]["epochs"] == 3
    final = _run_child(tmp_path, workdir)
    assert final.returncode == 0, final.stderr[-3000:]
    output = final.stdout + final.stderr
    assert "\b" not in final.stdout and "\r" not in final.stdout, "one line per epoch in a log file"
    assert "ran out of data" not in output
    # A complete, readable workdir identical to the uninterrupted run's.
    assert _rows(workdir / "metrics.csv") == _rows(tmp_path / "reference" / "metrics.csv")
    assert [row[0] for row in _rows(workdir / "metrics.csv")] == ["epoch", "0", "1", "2"]
    for a, b in zip(_weights(f"{workdir}-weights.npz"), reference.model.weights):
        np.testing.assert_array_equal(a, b.numpy())
    for name in ("model.keras", "best.keras"):
        keras.models.load_model(workdir / name)
    assert open(workdir / "curves.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    leftovers = [p for p in os.listdir(workdir) + os.listdir(workdir / "backup") if p.startswith(".tmp-")]
    assert not leftovers
