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
from vgg_keras.training.strategy import synchronized_batch_norm

strategy = training.make_strategy(args["strategy"])
config = training.base_config()
for field, value in args["config"].items():
    section, key = field.split(".")
    config[section][key] = value


def single_device_evaluation(model, config, data):
    """The trained weights evaluated on one device, over the plain (unpadded) validation split."""
    single = training.build_model(config, data.num_classes, data.mean_rgb)
    single.set_weights([w.numpy() for w in model.weights])
    training.compile_model(single, config, 0.01)
    return single.evaluate(data.eval_fn(None), verbose=0, return_dict=True)


class Progress(keras.callbacks.Callback):
    """Prints the global step after every batch (the parent kills on it) and slows down."""

    def on_train_batch_end(self, batch, logs=None):
        print("STEP", int(self.model.optimizer.iterations.numpy()), flush=True)
        time.sleep(args.get("sleep", 0.0))


data = training.synthetic_training_data(num_classes=4, image_size=32, batch_size=config.training.batch_size,
                                        num_eval=args.get("num_eval", 64))
result = training.train_with_data(config, args["workdir"], data, strategy, callbacks=[Progress()])
out = args["out"]
np.savez(out + ".npz", *[w.numpy() for w in result.model.weights])
summary = {"steps": result.steps, "replicas": strategy.num_replicas_in_sync, "history": result.history,
           "single_device_eval": single_device_evaluation(result.model, config, data)}
with open(out + ".json", "w") as handle:
    json.dump(summary, handle)
if args.get("parity"):
    # One global batch: split over the replicas it must give the single-device update.
    images, labels = next(iter(data.train_fn(None, 0)))
    updates = []
    # The run's own strategy again: a second one would reuse its collective keys (synchronized BN).
    for scope_strategy in (training.make_strategy("default"), strategy):
        keras.utils.set_random_seed(0)
        with scope_strategy.scope():
            model = training.build_model(config, data.num_classes, data.mean_rgb)
            training.compile_model(model, config, 0.01)
        before = [w.numpy() for w in model.weights]
        dataset = scope_strategy.distribute_datasets_from_function(
            lambda ctx: tf.data.Dataset.from_tensors((images, labels)).repeat(2).unbatch().batch(
                ctx.get_per_replica_batch_size(len(labels))))
        with synchronized_batch_norm(model, scope_strategy):
            model.fit(dataset, epochs=1, verbose=0)
        updates.append([w.numpy() - b for w, b in zip(model.weights, before)])
    # + 1e-4: a conv bias before BatchNorm gets no gradient, its ~1e-9 "update" is rounding noise.
    error = max(float(np.abs(a - b).max() / (np.abs(a).max() + 1e-4)) for a, b in zip(*updates))
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
    return {
        "strategy": strategy,
        "config": values,
        "workdir": str(tmp_path / "work" / name),
        "out": str(tmp_path / name),
    }


def _start(tmp_path, args, env=None, child=_CHILD):
    script = tmp_path / "child.py"
    script.write_text(child)
    environment = dict(os.environ, **(env or {}))
    return subprocess.Popen(
        [sys.executable, str(script), json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
    )


def _finish(process, timeout=240):
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-3000:]
    return output


def _results(tmp_path, name):
    summary = json.load(open(tmp_path / f"{name}.json"))
    weights = np.load(tmp_path / f"{name}.npz")
    return summary, [weights[k] for k in sorted(weights.files, key=lambda k: int(k.split("_")[1]))]


def _assert_validation_counts_every_example(summary):
    """The last epoch's validation (distributed, padded) == the final weights evaluated on one device."""
    single, history = summary["single_device_eval"], summary["history"]
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(history[f"val_{key}"][-1], single[key], rtol=2e-5, err_msg=key)


def _assert_loads_without_strategy(path, weights):
    """model.keras loads in a plain process, plain BatchNorm, with the trained (chief's) weights."""
    import keras  # the parent's Keras: no strategy, no logical devices

    import vgg_keras  # noqa: F401  (registers the custom layers)

    model = keras.models.load_model(path, compile=False)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and not any(layer.synchronized for layer in norms)
    for saved, trained in zip(model.weights, weights):
        np.testing.assert_allclose(saved.numpy(), trained, rtol=1e-6, atol=1e-7)


def _assert_best_loads(path, weights):
    """best.keras, saved inside `fit` (its BatchNorm still synchronized), loads with the epoch's weights."""
    import keras

    import vgg_keras  # noqa: F401  (registers the custom layers)

    model = keras.models.load_model(path, compile=False)
    for saved, trained in zip(model.weights, weights):
        np.testing.assert_allclose(saved.numpy(), trained, rtol=1e-6, atol=1e-7)


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    # BatchNorm on, 31 validation images: uneven over 2 replicas x 8.
    args = _args(
        tmp_path, "mirrored", "mirrored", training__epochs=3, training__steps_per_epoch=6, model__batch_norm=True
    )
    args["logical_cpus"], args["parity"], args["num_eval"] = 2, True, 31
    _finish(_start(tmp_path, args))
    summary, weights = _results(tmp_path, "mirrored")
    assert summary["replicas"] == 2 and summary["steps"] == 18
    assert summary["history"]["loss"][-1] < summary["history"]["loss"][0]
    _assert_validation_counts_every_example(summary)
    # Two steps (momentum included) on 2 replicas x 8 images == on 1 device x 16 images, for
    # every weight: BatchNorm's moving statistics too (synchronized over the replicas).
    assert json.load(open(tmp_path / "mirrored_parity.json"))["relative_error"] < 3e-4  # 0.9 unsynchronized
    resolved = json.load(open(tmp_path / "work" / "mirrored" / "config.json"))["resolved"]
    assert resolved["num_replicas"] == 2 and resolved["strategy"] == "MirroredStrategy"
    _assert_loads_without_strategy(tmp_path / "work" / "mirrored" / "model.keras", weights)


_EVAL_CHILD = r'''
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from vgg_keras import training
from vgg_keras.training.strategy import even_eval_fn

args = json.loads(sys.argv[1])
strategy = training.make_strategy("mirrored")


class ExamplesSeen(keras.metrics.Metric):
    """Counts the examples with a non-zero weight that the metrics saw (over all replicas)."""

    def __init__(self, name="examples", **kwargs):
        super().__init__(name=name, **kwargs)
        self.seen = self.add_variable(shape=(), initializer="zeros", name="seen")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.seen.assign_add(tf.reduce_sum(tf.cast(sample_weight > 0, self.dtype)))

    def result(self):
        return self.seen


results = []
for num_eval, batch in args["cases"]:
    config = training.base_config()
    for field, value in dict(args["config"], **{"training.batch_size": batch}).items():
        section, key = field.split(".")
        config[section][key] = value
    data = training.synthetic_training_data(num_classes=4, image_size=32, num_eval=num_eval, batch_size=batch)
    result = training.train_with_data(config, os.path.join(args["workdir"], f"{num_eval}_{batch}"), data, strategy)
    counted = result.model
    with strategy.scope():  # the same padded validation, with a counter among the metrics
        counted.compile(loss="sparse_categorical_crossentropy", weighted_metrics=["accuracy", ExamplesSeen()])
    dataset_fn, steps = even_eval_fn(data.eval_fn, num_eval, batch)
    distributed = counted.evaluate(strategy.distribute_datasets_from_function(dataset_fn), steps=steps,
                                   verbose=0, return_dict=True)
    single = counted.__class__.from_config(counted.get_config())
    single.set_weights(counted.get_weights())
    single.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    results.append({"case": [num_eval, batch], "history": result.history, "distributed": distributed,
                    "single": single.evaluate(data.eval_fn(None), verbose=0, return_dict=True)})
with open(args["out"], "w") as handle:
    json.dump(results, handle)
'''


def test_mirrored_validation_counts_every_example_for_any_size(tmp_path):
    """24 and 25 images in global batches of 16 / 32 on 2 replicas: no empty or unequal per-replica batch."""
    cases = [[24, 16], [25, 32]]  # and 31 / 16 in test_mirrored_strategy_on_two_logical_cpus
    config = {k: v for k, v in TINY.items() if v is not None}
    # No L2 term in the loss: fit's val_loss is then the plain cross-entropy evaluated below.
    config.update({"training.epochs": 1, "training.steps_per_epoch": 1, "optimizer.weight_decay_mode": "none"})
    args = {"cases": cases, "config": config, "workdir": str(tmp_path / "work"), "out": str(tmp_path / "eval.json")}
    _finish(_start(tmp_path, args, child=_EVAL_CHILD))
    for case in json.loads((tmp_path / "eval.json").read_text()):
        (num_eval, _), single, distributed = case["case"], case["single"], case["distributed"]
        assert distributed["examples"] == num_eval, case  # each example exactly once, padding weightless
        for key in ("loss", "accuracy"):
            np.testing.assert_allclose(distributed[key], single[key], rtol=2e-5, err_msg=f"{key} {case}")
            # fit's validation ran on the same padded batches: the mean over exactly the real examples
            np.testing.assert_allclose(case["history"][f"val_{key}"][-1], single[key], rtol=2e-5, err_msg=key)


def test_even_eval_fn_and_split_cpu_reject_bad_sizes():
    from vgg_keras.training import strategy as strategy_lib

    with pytest.raises(ValueError, match="num_examples=0"):
        strategy_lib.even_eval_fn(lambda ctx: None, num_examples=0, global_batch_size=16)
    with pytest.raises(ValueError, match="global_batch_size=2.5"):
        strategy_lib.even_eval_fn(lambda ctx: None, num_examples=24, global_batch_size=2.5)
    with pytest.raises(ValueError, match="cpu_devices=0"):
        strategy_lib.split_cpu(0)  # checked before TensorFlow is touched


def test_synchronized_batch_norm_only_while_inside_and_with_several_replicas():
    import types

    import keras

    from vgg_keras.training import strategy as strategy_lib

    inputs = keras.Input((4, 4, 3))
    inner = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.BatchNormalization()])  # nested model
    model = keras.Model(inputs, keras.layers.BatchNormalization()(inner(inputs)))
    norms = [model.layers[-1], inner.layers[0]]
    with strategy_lib.synchronized_batch_norm(model, types.SimpleNamespace(num_replicas_in_sync=1)) as switched:
        assert switched == [] and not any(layer.synchronized for layer in norms)
    two_replicas = types.SimpleNamespace(num_replicas_in_sync=2)
    with pytest.raises(RuntimeError), strategy_lib.synchronized_batch_norm(model, two_replicas) as switched:
        assert sorted(map(id, switched)) == sorted(map(id, norms)) and all(layer.synchronized for layer in norms)
        raise RuntimeError("fit failed")  # restored also when fit raises
    assert not any(layer.synchronized for layer in norms)
    assert not any(layer["config"].get("synchronized") for layer in model.get_config()["layers"])


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
        args = _args(
            tmp_path,
            f"worker{index}",
            "multi_worker",
            training__epochs=1,
            training__steps_per_epoch=4,
            model__batch_norm=True,
        )
        args["workdir"], args["num_eval"] = str(tmp_path / "work" / "shared"), 25  # 13 + 12 examples
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        processes.append(_start(tmp_path, args, {"TF_CONFIG": tf_config}))
    for process in processes:
        _finish(process)
    (first, first_weights), (second, second_weights) = _results(tmp_path, "worker0"), _results(tmp_path, "worker1")
    assert first["replicas"] == second["replicas"] == 2
    assert first["steps"] == second["steps"] == 4
    # Every weight, BatchNorm's moving statistics included (synchronized over the workers).
    for a, b in zip(first_weights, second_weights):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    for summary in (first, second):
        _assert_validation_counts_every_example(summary)
    shared = tmp_path / "work" / "shared"
    assert (shared / "model.keras").exists(), "the chief writes the final model"
    _assert_loads_without_strategy(shared / "model.keras", first_weights)
    _assert_best_loads(shared / "best.keras", first_weights)
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
    first_step_after_restart = int(next(line for line in output.splitlines() if line.startswith("STEP")).split()[1])
    assert first_step_after_restart == state["step"] + 1
    (ref, _), (res, _) = _results(tmp_path, "reference"), _results(tmp_path, "resumed")
    assert res["steps"] == ref["steps"] == 24
    assert res["history"]["epoch"] == [0.0, 1.0, 2.0], "each epoch logged once"
    for key in ("val_accuracy", "learning_rate"):
        np.testing.assert_allclose(res["history"][key][-1], ref["history"][key][-1], atol=0.15)
    np.testing.assert_allclose(res["history"]["val_loss"][-1], ref["history"]["val_loss"][-1], rtol=0.5)
    assert res["history"]["epoch"][:1] == ref["history"]["epoch"][:1]
    np.testing.assert_allclose(res["history"]["loss"][0], ref["history"]["loss"][0], rtol=1e-5)


def test_train_recipe_cpu_devices_runs_mirrored_and_evaluates_every_image(tmp_path):
    """`--cpu_devices=2`: two replicas without a GPU; vgg_shapes/tiny's 24 validation images in
    global batches of 64 (the case that crashed the first validation) are all counted.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    workdir = tmp_path / "run"
    command = [
        sys.executable,
        "recipes/train.py",
        "--config=recipes/configs/quickstart.py",
        f"--workdir={workdir}",
        "--cpu_devices=2",
        "--config.data.name=vgg_shapes/tiny",
        f"--config.data.data_dir={tmp_path / 'tfds'}",
        "--config.training.epochs=2",
        "--config.training.steps_per_epoch=1",
        "--config.data.mean_rgb_images=32",
        "--config.after.eval_methods=('center',)",
        "--config.after.eval_scales=(72,)",
        "--config.after.export=False",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", MPLBACKEND="Agg")
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    resolved = json.loads((workdir / "config.json").read_text())["resolved"]
    assert resolved["num_replicas"] == 2 and resolved["strategy"] == "MirroredStrategy"
    rows = (workdir / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and "val_accuracy" in rows[0], "both validations ran"
    report = json.loads(next(workdir.rglob("results.json")).read_text())
    assert {row["num_images"] for row in report["rows"]} == {24}, "the after-training evaluation sees every image"
