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
from test_training import tiny_config

from vgg_keras import training
from vgg_keras.training import callbacks as callbacks_lib


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
    return subprocess.run(
        [sys.executable, str(script), args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


# Each rerun is killed at a later point of the same run: before each kind of file is
# renamed into place, half-way through a metrics row, between the renames of a backup.
KILL_POINTS = [
    ("replace:config.json", 1),
    ("half-row", 1),  # epoch 1's metrics row half written
    ("replaced:previous.weights.h5", 2),  # the last backup moved aside, the new one not in place
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


# --------------------------------------------------------------------------- in one process


class _Crash(keras.callbacks.Callback):
    """Raises after optimizer step `step` (a crash without the cost of a child process)."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.step:
            raise RuntimeError(f"crash at step {self.step}")


def test_resumed_mid_epoch_run_matches_the_uninterrupted_one_bit_for_bit(tmp_path, capsys):
    reference = _train(tmp_path / "reference")
    data = training.synthetic_training_data(num_classes=4, image_size=32, batch_size=16)
    with pytest.raises(RuntimeError, match="crash at step 9"):  # backups every 2 steps: 8 kept
        training.train_with_data(resume_config(), str(tmp_path / "resumed"), data, callbacks=[_Crash(9)])
    capsys.readouterr()
    config = resume_config()
    config.training.verbose = 1
    resumed = _train(tmp_path / "resumed", config)
    output = capsys.readouterr().out
    # Every metrics row (the interrupted epoch 2 averages all its steps) and every weight.
    assert _rows(resumed.paths.csv) == _rows(reference.paths.csv)
    assert len(_rows(resumed.paths.csv)) == 4
    for a, b in zip(resumed.model.weights, reference.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Honest progress in a log (not a terminal): the run's own epoch numbers, one line each.
    assert [line for line in output.splitlines() if line.startswith("Epoch")] == ["Epoch 2/3", "Epoch 3/3"]
    assert "\b" not in output and "\r" not in output


def test_validation_does_not_warn_that_it_ran_out_of_data(tmp_path, recwarn):
    data = training.synthetic_training_data(num_classes=4, image_size=32, batch_size=16)
    eval_fn = data.eval_fn
    data.eval_fn = lambda ctx: eval_fn(ctx).ignore_errors()  # as the real pipeline: size unknown to tf.data
    training.train_with_data(tiny_config(epochs=2, steps_per_epoch=2), str(tmp_path / "run"), data)
    assert not [w for w in recwarn if "ran out of data" in str(w.message)]


def test_nan_stop_then_a_lower_learning_rate_resumes_with_it(tmp_path):
    config = tiny_config(epochs=1)
    config.optimizer.plateau_patience = 10  # no plateau reductions here
    config.training.backup_every_steps = 100  # backups at epoch ends only: none while diverging
    _train(tmp_path / "run", config)
    config.training.epochs, config.optimizer.learning_rate = 3, 1e4  # diverges in epoch 2
    with pytest.raises(FloatingPointError) as failure:
        _train(tmp_path / "run", config)
    message = str(failure.value)
    assert "Kept: the last good backup (step 6," in message and "the best checkpoint" in message
    assert "resumes from step 6" in message and "learning_rate (now 10000.0)" in message
    config.optimizer.learning_rate = 0.05
    result = _train(tmp_path / "run", config)
    assert result.steps == 18 and np.isfinite(result.history["loss"]).all()
    np.testing.assert_allclose(result.history["learning_rate"], [0.1 * 16 / 256] + [0.05 * 16 / 256] * 2, rtol=1e-6)
    assert json.load(open(result.paths.config))["optimizer"]["learning_rate"] == 0.05


def test_nan_stop_before_any_backup_claims_nothing_kept(tmp_path):
    config = tiny_config(epochs=1)
    config.optimizer.learning_rate, config.training.backup_every_steps = 1e6, 100
    with pytest.raises(FloatingPointError, match="Nothing was kept") as failure:
        _train(tmp_path / "run", config)
    assert "best" not in str(failure.value) and not (tmp_path / "run" / "best.keras").exists()


def test_an_empty_config_json_left_by_an_old_kill_is_rewritten(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "config.json").write_text("")
    result = _train(workdir, tiny_config(epochs=1, steps_per_epoch=2))
    assert json.load(open(result.paths.config))["resolved"]["steps_per_epoch"] == 2


# --------------------------------------------------------------------------- files


def test_repair_csv_drops_a_partial_row_and_rows_to_be_logged_again(tmp_path):
    path = tmp_path / "metrics.csv"
    complete = "epoch,loss\n0,1.5\n1,1.25\n"
    path.write_text(complete + "2,1.")  # killed while appending epoch 3's row
    callbacks_lib.repair_csv(str(path), epochs=5)
    assert path.read_text() == complete
    callbacks_lib.repair_csv(str(path), epochs=1)  # resuming in epoch 2: its row comes again
    assert path.read_text() == "epoch,loss\n0,1.5\n"
    inode = os.stat(path).st_ino
    callbacks_lib.repair_csv(str(path), epochs=1)
    assert os.stat(path).st_ino == inode, "a sound file is not rewritten"
    assert training.trainer.callbacks_lib.read_csv_history(str(path)) == {"epoch": [0.0], "loss": [1.5]}


def test_write_atomically_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "config.json"
    callbacks_lib.write_json_atomically(str(path), {"a": 1})

    def broken(temporary):
        with open(temporary, "w") as handle:
            handle.write('{"a": ')
        raise KeyboardInterrupt  # a kill between the two halves

    with pytest.raises(KeyboardInterrupt):
        callbacks_lib.write_atomically(str(path), broken)
    assert json.load(open(path)) == {"a": 1} and os.listdir(tmp_path) == ["config.json"]
    (tmp_path / ".tmp-123-model.keras").write_text("left by SIGKILL")
    assert callbacks_lib.remove_temporaries(str(tmp_path)) == [str(tmp_path / ".tmp-123-model.keras")]


def test_tfds_files_are_shuffled_with_each_streams_seed(tmp_path, monkeypatch):
    import vgg_keras.data

    config = tiny_config()
    config.data.name, config.data.data_dir, config.data.shuffle_buffer = "vgg_shapes/tiny", str(tmp_path), 8
    data = training.training_data(config, 16)
    calls = []
    real_get_source = vgg_keras.data.get_source

    def recording_get_source(name, split, **kwargs):
        calls.append((split, kwargs.get("shuffle_files"), kwargs.get("seed")))
        return real_get_source(name, split, **kwargs)

    monkeypatch.setattr(vgg_keras.data, "get_source", recording_get_source)
    labels = {seed: [next(iter(data.train_fn(None, seed)))[1].numpy().tolist() for _ in range(2)] for seed in (3, 4)}
    assert calls == [("train", True, 3)] * 2 + [("train", True, 4)] * 2  # one file order per epoch seed
    assert labels[3][0] == labels[3][1] and labels[3][0] != labels[4][0]
