"""Training library: config validation, lr scaling, weight decay, plateau schedule, warm start,
mixed precision, a short run's outputs, determinism, NaN handling and early dataset errors.
"""

import importlib.util
import os
import types

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from vgg_keras import training
from vgg_keras.training import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(arch="A", epochs=2, steps_per_epoch=6) -> ml_collections.ConfigDict:
    """A 32-px, 1/16-width VGG trained for a few steps on the synthetic task."""
    config = config_lib.base_config()
    config.experiment = "tiny"
    config.model.arch = arch
    config.model.width_multiplier = 1 / 16
    config.model.fc_units = 32
    config.model.dropout = 0.0
    config.data.crop_size = 32
    config.data.scale_min = config.data.scale_max = config.data.eval_scale = 32
    config.optimizer.learning_rate = 0.1  # 0.00625 at batch 16
    config.training.batch_size = 16
    config.training.epochs = epochs
    config.training.steps_per_epoch = steps_per_epoch
    config.training.backup_every_steps = 2
    config.training.strategy = "default"
    config.training.verbose = 0
    return config


def _override(config: ml_collections.ConfigDict, values: dict) -> ml_collections.ConfigDict:
    """`config` with `{"section.key": value}` set, as command-line overrides do."""
    for field, value in values.items():
        section, key = field.split(".")
        config[section][key] = value
    return config


# --------------------------------------------------------------------------- configs


def test_linear_lr_scaling():
    assert training.scaled_learning_rate(0.01, 64) == pytest.approx(0.0025)
    assert training.scaled_learning_rate(0.01, 512, 256) == pytest.approx(0.02)
    assert training.scaled_learning_rate(0.01, 64, scale=False) == 0.01
    with pytest.raises(ValueError, match="global_batch_size=0"):
        training.scaled_learning_rate(0.01, 0)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("model.arch", "F", "model.arch='F'"),
        ("model.width_multiplier", 0.0, "model.width_multiplier=0.0"),
        ("data.crop_size", 50, "data.crop_size=50"),
        ("data.scale_min", 16, "data.scale_min=16"),
        ("training.batch_size", 0, "training.batch_size=0"),
        ("training.precision", "float8", "training.precision='float8'"),
        ("training.strategy", "horovod", "training.strategy='horovod'"),
        ("training.steps_per_execution", 0, "training.steps_per_execution=0"),
        ("optimizer.weight_decay_mode", "adamw", "optimizer.weight_decay_mode='adamw'"),
        ("optimizer.plateau_factor", 1.5, "optimizer.plateau_factor=1.5"),
        ("optimizer.learning_rate", -1.0, "optimizer.learning_rate=-1.0"),
    ],
)
def test_bad_config_values_fail_before_training(tmp_path, field, value, message):
    config = _override(tiny_config(), {field: value})
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        training.train(config, str(tmp_path))
    assert not os.listdir(tmp_path), "nothing may be written for an invalid config"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"data.scale_min": 64, "data.scale_max": 48}, "data.scale_max=48"),
        ({"init.from_shallower": "a.keras", "init.checkpoint": "b.keras"}, "at most one warm start"),
        ({"training.strategy": "tpu"}, "tpu_address"),
    ],
)
def test_inconsistent_config_values(values, message):
    with pytest.raises(ValueError, match=message):
        training.validate_config(_override(tiny_config(), values))


def test_a_config_must_be_a_config_dict():
    with pytest.raises(TypeError, match="ConfigDict"):
        training.validate_config({"model": {}})


def test_missing_dataset_fails_before_training(tmp_path):
    config = tiny_config()
    config.data.name = f"folder:{tmp_path}/no_such_dataset"
    with pytest.raises(FileNotFoundError, match="no_such_dataset"):
        training.train(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_missing_warm_start_file_fails_before_training(tmp_path):
    config = tiny_config("D")
    config.init.from_shallower = str(tmp_path / "a_s256" / "model.keras")
    with pytest.raises(FileNotFoundError, match="config.init.from_shallower"):
        training.train(config, str(tmp_path / "run"))


def _load_config_file(path):
    spec = importlib.util.spec_from_file_location("experiment_config", path)  # as config_flags does
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def test_every_table3_row_has_a_valid_config():
    rows = {
        "a_s256",
        "a_lrn_s256",
        "b_s256",
        "c_s256",
        "d_s256",
        "e_s256",
        "c_s384",
        "d_s384",
        "e_s384",
        "c_s256_512",
        "d_s256_512",
        "e_s256_512",
    }
    for name in sorted(rows | {"quickstart"}):
        path = os.path.join(REPO, "recipes", "configs", f"{name}.py")
        config = training.validate_config(_load_config_file(path))
        assert config.optimizer.momentum == 0.9 and config.optimizer.weight_decay == 5e-4
    d384 = _load_config_file(os.path.join(REPO, "recipes", "configs", "d_s384.py"))
    assert d384.init.checkpoint == "runs/d_s256/model.keras" and d384.optimizer.learning_rate == 1e-3
    jitter = training.validate_config(_load_config_file(os.path.join(REPO, "recipes", "configs", "e_s256_512.py")))
    assert (jitter.data.scale_min, jitter.data.scale_max, jitter.data.eval_scale) == (256, 512, 384)
    assert jitter.init.checkpoint == "runs/e_s384/model.keras"
    b = _load_config_file(os.path.join(REPO, "recipes", "configs", "b_s256.py"))
    assert b.init.from_shallower == "runs/a_s256/model.keras"
    a = _load_config_file(os.path.join(REPO, "recipes", "configs", "a_s256.py"))
    assert (a.optimizer.learning_rate, a.training.batch_size, a.data.name) == (1e-2, 256, "imagenet2012")
    assert not a.init.from_shallower and not a.init.checkpoint


# --------------------------------------------------------------------------- strategies


def test_strategy_factory_checks_its_inputs(monkeypatch):
    assert training.make_strategy("default") is tf.distribute.get_strategy()
    assert training.make_strategy("auto").num_replicas_in_sync == 1  # no GPUs here
    with pytest.raises(ValueError, match="strategy='horovod'"):
        training.make_strategy("horovod")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        training.make_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        training.make_strategy("multi_worker")
    with pytest.raises(ValueError, match="tpu_address"):
        training.make_strategy("tpu")


def _in_cluster(cluster, task_type, task_id):
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(cluster), task_type=task_type, task_id=task_id
    )
    return types.SimpleNamespace(cluster_resolver=resolver)


def test_chief_and_task_names_follow_tf_config_conventions():
    workers = {"worker": ["a:1", "b:1"]}
    assert training.is_chief(tf.distribute.get_strategy())
    assert training.is_chief(_in_cluster(workers, "worker", 0))
    assert not training.is_chief(_in_cluster(workers, "worker", 1))
    with_chief = {"chief": ["c:1"], "worker": ["a:1"]}
    assert training.is_chief(_in_cluster(with_chief, "chief", 0))
    assert not training.is_chief(_in_cluster(with_chief, "worker", 0))
    assert training.task_name(_in_cluster(with_chief, "worker", 0)) == "worker_0"
    paths = training.RunPaths.of("w", training.task_name(_in_cluster(workers, "worker", 1)))
    assert paths.backup == os.path.join("w", "workers", "worker_1")


# --------------------------------------------------------------------------- optimisation


class _FakeModel:
    def __init__(self, learning_rate):
        self.optimizer = keras.optimizers.SGD(learning_rate)


def test_plateau_schedule_divides_lr_at_most_max_times_and_keeps_state():
    schedule = training.PlateauSchedule("val_accuracy", factor=0.1, patience=2, min_delta=0.0, max_reductions=3)
    schedule.set_model(_FakeModel(0.01))
    rates = []
    for accuracy in [0.1, 0.2, 0.2, 0.2, 0.3, 0.3, 0.3] + [0.3] * 10:
        logs = {"val_accuracy": accuracy}
        schedule.on_epoch_end(len(rates), logs)
        rates.append(logs["learning_rate"])
    np.testing.assert_allclose(rates[:7], [1e-2, 1e-2, 1e-2, 1e-3, 1e-3, 1e-3, 1e-4], rtol=1e-5)
    assert rates[-1] == pytest.approx(1e-5) and schedule.reductions == 3
    restored = training.PlateauSchedule("val_accuracy")
    restored.set_state(schedule.get_state())
    assert restored.get_state() == schedule.get_state()
    with pytest.raises(ValueError, match="val_top1"):
        training.PlateauSchedule("val_top1").on_epoch_end(0, {"loss": 1.0})


def test_l2_weight_decay_is_the_papers_gradient():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="fc")])
    assert training.apply_weight_decay(model, 5e-4) == 1
    kernel = model.get_layer("fc").kernel
    expected = 5e-4 / 2 * np.sum(kernel.numpy() ** 2)
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-5)
    with tf.GradientTape() as tape:
        penalty = tf.add_n(model.losses)
    np.testing.assert_allclose(tape.gradient(penalty, kernel.value).numpy(), 5e-4 * kernel.numpy(), rtol=1e-5)


def test_decoupled_weight_decay_shrinks_kernels_only():
    optimizer = training.make_optimizer(0.1, momentum=0.9, weight_decay=0.5, weight_decay_mode="decoupled")
    kernel, bias = keras.Variable(np.ones((2, 2)), name="kernel"), keras.Variable(np.ones(2), name="bias")
    optimizer.apply_gradients([(np.zeros((2, 2)), kernel), (np.zeros(2), bias)])
    np.testing.assert_allclose(kernel.numpy(), 1 - 0.1 * 0.5)
    np.testing.assert_allclose(bias.numpy(), 1.0)
    with pytest.raises(ValueError, match="weight_decay_mode='adamw'"):
        training.make_optimizer(0.1, weight_decay_mode="adamw")


# --------------------------------------------------------------------------- model


def test_mixed_precision_model_keeps_a_float32_head():
    config = tiny_config()
    config.training.precision = "mixed_bfloat16"
    model = training.build_model(config, num_classes=4, mean_rgb=(1.0, 2.0, 3.0))
    assert model.get_layer("block1_conv1").compute_dtype == "bfloat16"
    assert model.get_layer("block1_conv1").variable_dtype == "float32"
    assert model.get_layer("predictions").compute_dtype == "float32"
    assert model(np.zeros((1, 32, 32, 3))).dtype == "float32"
    assert keras.config.dtype_policy().name == "float32", "the global policy is restored"
    assert model.get_layer("preprocessing").get_config()["mean"] == [1.0, 2.0, 3.0]


def _warm_started(tmp_path, source_arch, target_arch, field, filename):
    """(source model, freshly built target, its weights before, names `warm_start` copied)."""
    source = training.build_model(tiny_config(source_arch), 4, (0, 0, 0))
    path = str(tmp_path / filename)
    source.save(path) if filename.endswith(".keras") else source.save_weights(path)
    config = tiny_config(target_arch)
    config.init[field] = path
    target = training.build_model(config, 4, (0, 0, 0))
    before = {layer.name: [w.copy() for w in layer.get_weights()] for layer in target.layers}
    return source, target, before, training.warm_start(target, config)


def test_warm_start_from_net_a_copies_the_papers_layers(tmp_path):
    net_a, net_d, before, copied = _warm_started(tmp_path, "A", "D", "from_shallower", "a.keras")
    assert copied == ["block1_conv1", "block2_conv1", "block3_conv1", "block3_conv2", "fc1", "fc2", "predictions"]
    for name in copied:
        for a, d in zip(net_a.get_layer(name).get_weights(), net_d.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, d)
    for name in ("block1_conv2", "block3_conv3", "block4_conv1", "block5_conv3"):
        for old, new in zip(before[name], net_d.get_layer(name).get_weights()):
            np.testing.assert_array_equal(old, new)


def test_warm_start_from_any_checkpoint(tmp_path):
    source, model, _, _ = _warm_started(tmp_path, "B", "B", "checkpoint", "b.weights.h5")
    for a, b in zip(source.weights, model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


# --------------------------------------------------------------------------- runs


def _run(tmp_path, name, config=None, data=None):
    config = config or tiny_config()
    data = data or training.synthetic_training_data(num_classes=4, image_size=32, batch_size=16)
    return training.train_with_data(config, str(tmp_path / name), data)


def test_short_run_learns_and_writes_its_workdir(tmp_path):
    config = tiny_config(epochs=3)
    result = _run(tmp_path, "run", config)
    paths = result.paths
    for path in (paths.config, paths.csv, paths.plot, paths.best, paths.final):
        assert os.path.exists(path), path
    assert result.steps == 18
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert result.history["learning_rate"][0] == pytest.approx(0.1 * 16 / 256)
    reloaded = keras.models.load_model(paths.final)
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(reloaded.predict(images, verbose=0), result.model.predict(images, verbose=0), atol=1e-6)
    resolved = training.trainer.json.load(open(paths.config))["resolved"]
    assert resolved["steps_per_epoch"] == 6 and resolved["num_replicas"] == 1


def test_bfloat16_xla_and_steps_per_execution_train(tmp_path):
    config = tiny_config(epochs=1, steps_per_epoch=4)
    config.training.precision, config.training.jit_compile, config.training.steps_per_execution = (
        "mixed_bfloat16",
        True,
        2,
    )
    result = _run(tmp_path, "fast", config)
    assert result.steps == 4 and np.isfinite(result.history["loss"][0])
    assert result.model.get_layer("fc1").compute_dtype == "bfloat16"
    assert result.model.jit_compile is True
    assert result.model.steps_per_execution == 2


def test_same_seed_same_result_on_one_device(tmp_path):
    first = _run(tmp_path, "first", tiny_config(epochs=1))
    second = _run(tmp_path, "second", tiny_config(epochs=1))
    for a, b in zip(first.model.weights, second.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert first.history == second.history


def test_rerunning_a_finished_run_does_nothing_and_other_configs_are_refused(tmp_path):
    result = _run(tmp_path, "run", tiny_config(epochs=1))
    again = _run(tmp_path, "run", tiny_config(epochs=1))
    assert again.steps == result.steps == 6
    for a, b in zip(result.model.weights, again.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    other = tiny_config(arch="B", epochs=1)
    with pytest.raises(ValueError, match="model.arch: 'A' -> 'B'"):
        _run(tmp_path, "run", other)
    with pytest.raises(ValueError, match="steps per epoch: 6 -> 5"):
        _run(tmp_path, "run", tiny_config(epochs=1, steps_per_epoch=5))


def test_backup_restores_weights_optimizer_state_and_schedule(tmp_path):
    config = tiny_config(epochs=3)
    config.optimizer.plateau_patience, config.optimizer.plateau_min_delta = 1, 0.5  # reduce every epoch
    result = _run(tmp_path, "run", config)
    assert result.history["learning_rate"][-1] == pytest.approx(0.1 * 16 / 256 * 0.1**2)
    model = training.build_model(config, 4, result.data.mean_rgb)
    training.compile_model(model, config, 1.0)
    model.optimizer.build(model.trainable_variables)
    schedule, best = training.PlateauSchedule(), training.BestCheckpoint(str(tmp_path / "unused.keras"))
    backup = training.ResumableBackup(result.paths.backup, 2, 6, {"plateau": schedule, "best": best})
    assert backup.restore(model) == 18 and backup.epochs_done == 3
    assert schedule.reductions == 2 and best.best == pytest.approx(max(result.history["val_accuracy"]))
    saved, restored = result.model.optimizer.variables, model.optimizer.variables
    assert len(saved) == len(restored) and any("momentum" in v.name for v in saved)
    for a, b in zip(saved, restored):  # momentum buffers, iterations and the reduced learning rate
        assert a.name == b.name
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)
    for a, b in zip(result.model.weights, model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_nan_loss_stops_training_and_keeps_the_last_good_backup(tmp_path):
    good = training.synthetic_training_data(num_classes=4, image_size=32, batch_size=16)
    bad_step = 5

    def poisoned(input_context, seed):
        images = good.train_fn(input_context, seed).map(lambda x, y: (x, y))
        index = tf.data.Dataset.range(10**9)
        return tf.data.Dataset.zip((images, index)).map(
            lambda xy, i: (tf.where(i >= bad_step, xy[0] * np.nan, xy[0]), xy[1])
        )

    data = training.TrainingData(poisoned, good.eval_fn, 4, good.class_names, 256, good.mean_rgb)
    with pytest.raises(FloatingPointError, match="last good backup"):
        _run(tmp_path, "run", tiny_config(epochs=2), data)
    state = training.trainer.json.load(open(tmp_path / "run" / "backup" / "callback_state.json"))
    assert state["step"] == 4  # backups every 2 steps; step 6 (loss NaN since step 6) was refused
    model = training.build_model(tiny_config(), 4, good.mean_rgb)
    model.load_weights(str(tmp_path / "run" / "backup" / "latest.weights.h5"))
    assert all(np.isfinite(w.numpy()).all() for w in model.weights)
