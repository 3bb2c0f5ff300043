"""Training under tf.distribute and after kill -9, each in fresh Python processes.

Logical CPU devices and TF_CONFIG must be set before TensorFlow initialises, so every run
here is a child process (`_CHILD` below), and the rest of the suite is unaffected.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow

_CHILD = r'''
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
args = json.loads(sys.argv[1])
import tensorflow as tf
if args.get("logical_cpus"):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args["logical_cpus"])
import keras
import numpy as np
from vgg_keras import training

strategy = training.make_strategy(args["strategy"])
config = training.base_config()
for field, value in args["config"].items():
    section, key = field.split(".")
    config[section][key] = value


class Progress(keras.callbacks.Callback):
    """Prints the global step after every batch (the parent kills on it) and slows down."""

    def on_train_batch_end(self, batch, logs=None):
        print("STEP", int(self.model.optimizer.iterations.numpy()), flush=True)
        time.sleep(args.get("sleep", 0.0))


data = training.synthetic_training_data(num_classes=4, image_size=32, batch_size=config.training.batch_size)
result = training.train_with_data(config, args["workdir"], data, strategy, callbacks=[Progress()])
out = args["out"]
np.savez(out + ".npz", *[w.numpy() for w in result.model.weights])
summary = {"steps": result.steps, "replicas": strategy.num_replicas_in_sync, "history": result.history}
with open(out + ".json", "w") as handle:
    json.dump(summary, handle)
if args.get("parity"):
    # One global batch: split over the replicas it must give the single-device update.
    images, labels = next(iter(data.train_fn(None, 0)))
    updates = []
    for name in ("default", args["strategy"]):
        keras.utils.set_random_seed(0)
        scope_strategy = training.make_strategy(name)
        with scope_strategy.scope():
            model = training.build_model(config, data.num_classes, data.mean_rgb)
            training.compile_model(model, config, 0.01)
        before = [w.numpy() for w in model.trainable_weights]
        dataset = scope_strategy.distribute_datasets_from_function(
            lambda ctx: tf.data.Dataset.from_tensors((images, labels)).repeat(2).unbatch().batch(
                ctx.get_per_replica_batch_size(len(labels))))
        model.fit(dataset, epochs=1, verbose=0)
        updates.append([w.numpy() - b for w, b in zip(model.trainable_weights, before)])
    error = max(float(np.abs(a - b).max() / (np.abs(a).max() + 1e-12)) for a, b in zip(*updates))
    with open(out + "_parity.json", "w") as handle:
        json.dump({"relative_error": error}, handle)
print("DONE", flush=True)
'''

TINY = {
    "experiment": None,
    "model.arch": "A",
    "model.width_multiplier": 1 / 16,
    "model.fc_units": 32,
    "model.dropout": 0.0,
    "data.crop_size": 32,
    "data.scale_min": 32,
    "data.scale_max": 32,
    "data.eval_scale": 32,
    "optimizer.learning_rate": 0.1,
    "training.batch_size": 16,
    "training.verbose": 0,
}


def _args(tmp_path, name, strategy="default", **config):
    values = {k: v for k, v in TINY.items() if v is not None}
    values.update({k.replace("__", "."): v for k, v in config.items()})
    return {"strategy": strategy, "config": values, "workdir": str(tmp_path / "work" / name),
            "out": str(tmp_path / name)}


def _start(tmp_path, args, env=None):
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    environment = dict(os.environ, **(env or {}))
    return subprocess.Popen([sys.executable, str(script), json.dumps(args)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=environment)


def _finish(process, timeout=240):
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-3000:]
    return output


def _results(tmp_path, name):
    summary = json.load(open(tmp_path / f"{name}.json"))
    weights = np.load(tmp_path / f"{name}.npz")
    return summary, [weights[k] for k in sorted(weights.files, key=lambda k: int(k.split("_")[1]))]


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    args = _args(tmp_path, "mirrored", "mirrored", training__epochs=3, training__steps_per_epoch=6,
)
    args["logical_cpus"], args["parity"] = 2, True
    _finish(_start(tmp_path, args))
    summary, _ = _results(tmp_path, "mirrored")
    assert summary["replicas"] == 2 and summary["steps"] == 18
    assert summary["history"]["loss"][-1] < summary["history"]["loss"][0]
    # Two steps (momentum included) on 2 replicas x 8 images == on 1 device x 16 images.
    assert json.load(open(tmp_path / "mirrored_parity.json"))["relative_error"] < 1e-4
    resolved = json.load(open(tmp_path / "work" / "mirrored" / "config.json"))["resolved"]
    assert resolved["num_replicas"] == 2 and resolved["strategy"] == "MirroredStrategy"


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_mirrored_strategy_two_processes_agree(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    processes = []
    for index in range(2):
        args = _args(tmp_path, f"worker{index}", "multi_worker", training__epochs=1, training__steps_per_epoch=4)
        args["workdir"] = str(tmp_path / "work" / "shared")
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        processes.append(_start(tmp_path, args, {"TF_CONFIG": tf_config}))
    for process in processes:
        _finish(process)
    (first, first_weights), (second, second_weights) = _results(tmp_path, "worker0"), _results(tmp_path, "worker1")
    assert first["replicas"] == second["replicas"] == 2
    assert first["steps"] == second["steps"] == 4
    for a, b in zip(first_weights, second_weights):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    shared = tmp_path / "work" / "shared"
    assert (shared / "model.keras").exists(), "the chief writes the final model"
    assert (shared / "workers" / "worker_1" / "latest.weights.h5").exists(), "worker 1 keeps its own backup"


def _kill_after(process, step):
    """SIGKILLs the child once it reported `step`; returns the last step it completed."""
    last = 0
    for line in process.stdout:
        if line.startswith("STEP"):
            last = int(line.split()[1])
            if last >= step:
                os.kill(process.pid, signal.SIGKILL)
                break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    for line in process.stdout.read().splitlines():  # steps it reported before dying
        if line.startswith("STEP"):
            last = int(line.split()[1])
    return last


def test_kill_9_and_restart_matches_an_uninterrupted_run(tmp_path):
    every = 3
    settings = dict(training__epochs=3, training__steps_per_epoch=8, training__backup_every_steps=every)
    reference = _start(tmp_path, _args(tmp_path, "reference", **settings))
    _finish(reference)
    interrupted = _args(tmp_path, "resumed", **settings)
    interrupted["sleep"] = 0.25  # slow enough to be killed mid-epoch (step 13 of 8-step epochs)
    killed_at = _kill_after(_start(tmp_path, interrupted), 13)
    state = json.load(open(tmp_path / "work" / "resumed" / "backup" / "callback_state.json"))
    # Progress prints a step before the backup callback may save it: at most `every` steps lost.
    assert killed_at - every <= state["step"] <= killed_at, "at most one backup interval lost"
    assert state["step"] > 8 and state["epochs_done"] == state["step"] // 8
    interrupted["sleep"] = 0.0
    output = _finish(_start(tmp_path, interrupted))
    first_step_after_restart = int(next(l for l in output.splitlines() if l.startswith("STEP")).split()[1])
    assert first_step_after_restart == state["step"] + 1
    (ref, ref_weights), (res, res_weights) = _results(tmp_path, "reference"), _results(tmp_path, "resumed")
    assert res["steps"] == ref["steps"] == 24
    assert res["history"]["epoch"] == [0.0, 1.0, 2.0], "each epoch logged once"
    for key in ("val_accuracy", "learning_rate"):
        np.testing.assert_allclose(res["history"][key][-1], ref["history"][key][-1], atol=0.15)
    np.testing.assert_allclose(res["history"]["val_loss"][-1], ref["history"]["val_loss"][-1], rtol=0.5)
    assert res["history"]["epoch"][:1] == ref["history"]["epoch"][:1]
    np.testing.assert_allclose(res["history"]["loss"][0], ref["history"]["loss"][0], rtol=1e-5)
