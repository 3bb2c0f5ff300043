"""Fine-tuning (vgg_keras.training.finetune, recipes/finetune.py): frozen phases, the gain over
training from scratch, resume after a kill, folder hold-out, and clear errors for bad input.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import ml_collections
import numpy as np
import pytest
from PIL import Image

import vgg_keras
from vgg_keras import training
from vgg_keras.training import finetune, trainer
from vgg_keras.training.data import _synthetic_arrays

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# New classes for the same kind of images: the pretrained features fit, the classifier must be new.
NEW_LABELS = np.array([3, 6, 1, 7, 0, 5, 2, 4])


def tiny_config(**finetune_fields) -> ml_collections.ConfigDict:
    """A 32-px, 1/16-width VGG-A with BatchNorm, one short epoch per phase."""
    config = finetune.finetune_config()
    config.experiment = "tiny"
    config.model.arch, config.model.batch_norm = "A", True
    config.model.width_multiplier, config.model.fc_units, config.model.dropout = 1 / 16, 32, 0.0
    config.data.name = "synthetic"
    config.data.crop_size = config.data.scale_min = config.data.scale_max = config.data.eval_scale = 32
    config.optimizer.learning_rate = 0.8  # 0.025 at batch 8
    config.training.batch_size, config.training.steps_per_epoch = 8, 6
    config.training.strategy, config.training.verbose, config.training.backup_every_steps = "default", 0, 2
    config.finetune.phase1_epochs, config.finetune.phase2_epochs = 1, 1
    config.after.evaluate = config.after.export = False
    config.finetune.update(finetune_fields)
    return config


def _source(num_classes=8) -> keras.Model:
    return trainer.build_model(tiny_config(), num_classes, (127.5, 127.5, 127.5))


def _values(model, name):
    return [np.array(w) for w in model.get_layer(name).get_weights()]


def _same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def transfer(tmp_path_factory):
    """A BN net pretrained on 8 square positions, fine-tuned on 16 images of 8 new classes, and the same
    net trained from scratch on those 16 images for as many steps (12).
    """
    keras.utils.set_random_seed(0)
    pretrained = _source()
    pretrained.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy")
    pretrained.fit(*_synthetic_arrays(8, 32, 512, seed=1), batch_size=16, epochs=2, verbose=0)
    train_x, train_y = _synthetic_arrays(8, 32, 16, seed=3)
    eval_x, eval_y = _synthetic_arrays(8, 32, 256, seed=4)
    data = training.arrays_training_data(
        (train_x, NEW_LABELS[train_y]), (eval_x, NEW_LABELS[eval_y]), 8, [f"new_{i}" for i in range(8)]
    )
    workdir = tmp_path_factory.mktemp("transfer")
    phases = finetune.finetune_with_data(
        tiny_config(unfreeze="block5,fc"), str(workdir / "ft"), data, lambda: pretrained
    )
    scratch_config = tiny_config()
    scratch_config.training.epochs = 2
    scratch = training.train_with_data(scratch_config, str(workdir / "scratch"), data)
    return pretrained, phases, scratch


@pytest.mark.slow  # the module fixture trains three short runs
def test_phase1_trains_only_the_new_classifier_and_keeps_batchnorm_statistics(transfer):
    pretrained, phases, _ = transfer
    phase1 = keras.models.load_model(phases[0].paths.final)
    assert phases[0].steps == 6 and phase1.get_layer("predictions").units == 8
    assert phase1.get_layer("preprocessing").mode == "mean_rgb"  # the source's normalisation came along
    for layer in pretrained.layers:
        if layer.weights and layer.name != "predictions":  # convs, BN (gamma, beta, moving mean/variance), fc1, fc2
            assert _same(_values(pretrained, layer.name), _values(phase1, layer.name)), layer.name


@pytest.mark.slow  # the module fixture trains three short runs
def test_phase2_changes_only_the_unfrozen_blocks_and_keeps_batchnorm_frozen(transfer):
    _, phases, _ = transfer
    phase1, phase2 = keras.models.load_model(phases[0].paths.final), phases[1].model
    for layer in phase2.layers:
        if not layer.weights:
            continue
        unchanged = _same(_values(phase1, layer.name), _values(phase2, layer.name))
        trained = finetune.layer_group(layer.name) in ("block5", "fc", "head")
        if isinstance(layer, keras.layers.BatchNormalization) or not trained:
            assert unchanged, layer.name
        else:
            assert not unchanged, layer.name


@pytest.mark.slow  # the module fixture trains three short runs
def test_finetuning_beats_training_from_scratch_on_few_images(transfer):
    _, phases, scratch = transfer
    tuned, baseline = phases[-1].history["val_accuracy"][-1], scratch.history["val_accuracy"][-1]
    assert tuned >= baseline + 0.15 and tuned > 0.8, (tuned, baseline)


# --------------------------------------------------------------------------- the recipe: resume after a kill


def _image_folder(root, classes=("blue", "green", "red"), per_class=6):
    rng = np.random.default_rng(0)
    for index, name in enumerate(classes):
        os.makedirs(root / name)
        for i in range(per_class):
            pixels = rng.uniform(0, 80, (36, 40, 3))
            pixels[..., 2 - index] += 150  # the class is the dominant colour
            Image.fromarray(pixels.astype("uint8")).save(root / name / f"{i}.png")
    return root


_RUNNER = """
import os, runpy, signal, sys
import keras
from vgg_keras.training import trainer
kill_at, original = int(sys.argv[1]), trainer.train_with_data

class Probe(keras.callbacks.Callback):
    def __init__(self, workdir):
        super().__init__()
        self.phase = os.path.basename(workdir)
    def on_train_begin(self, logs=None):
        print("START", self.phase, int(self.model.optimizer.iterations), flush=True)
    def on_train_batch_end(self, batch, logs=None):
        if self.phase == "phase2" and kill_at and int(self.model.optimizer.iterations) >= kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

def with_probe(config, workdir, data, strategy=None, callbacks=(), **kwargs):
    return original(config, workdir, data, strategy, list(callbacks) + [Probe(workdir)], **kwargs)

trainer.train_with_data = with_probe
sys.argv = ["finetune.py", "--config=" + sys.argv[2], "--workdir=" + sys.argv[3]]
sys.path.insert(0, os.path.join({repo!r}, "recipes"))  # as `python recipes/finetune.py` does
runpy.run_path(os.path.join({repo!r}, "recipes", "finetune.py"), run_name="__main__")
"""

_CONFIG = """
from vgg_keras.training import finetune

def get_config():
    config = finetune.finetune_config()
    config.experiment = "tiny_folder"
    config.data.name = "folder:{folder}"
    config.data.crop_size = config.data.scale_min = 32
    config.data.scale_max, config.data.eval_scale = 36, 32
    config.finetune.source = "{source}"
    config.finetune.phase1_epochs, config.finetune.phase2_epochs = 1, 2
    config.finetune.class_weights, config.finetune.label_smoothing = True, 0.1
    config.optimizer.learning_rate = 0.4
    config.training.batch_size, config.training.backup_every_steps = 4, 2
    config.training.strategy, config.training.verbose = "default", 0
    config.after.eval_methods, config.after.eval_scales = ("dense",), (32,)
    return config
"""


@pytest.mark.slow
def test_finetune_recipe_resumes_after_a_kill_and_evaluates_and_exports(tmp_path):
    folder = _image_folder(tmp_path / "images")
    source = str(tmp_path / "source.keras")
    _source(num_classes=5).save(source)
    (tmp_path / "cfg.py").write_text(_CONFIG.format(folder=folder, source=source))
    (tmp_path / "run.py").write_text(textwrap.dedent(_RUNNER.format(repo=REPO)))
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), KERAS_BACKEND="tensorflow")
    workdir = tmp_path / "run"

    def run(kill_at):
        return subprocess.run(
            [sys.executable, str(tmp_path / "run.py"), str(kill_at), str(tmp_path / "cfg.py"), str(workdir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    killed = run(kill_at=5)  # 15 training images (1 of 6 per class held out) / batch 4: 3 steps per epoch
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert "START phase2 0" in killed.stdout and os.path.exists(workdir / "phase2" / "backup")
    resumed = run(kill_at=0)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "START phase2 4" in resumed.stdout  # from the backup at step 4, not from the start
    assert "START phase1" not in resumed.stdout  # phase 1 had finished: nothing to train again
    for phase, epochs in (("phase1", 1), ("phase2", 2)):
        with open(workdir / phase / "metrics.csv") as handle:
            assert len(handle.read().strip().splitlines()) == 1 + epochs, phase
    with open(workdir / "phase2" / "config.json") as handle:
        resolved = json.load(handle)["resolved"]
    assert resolved["class_names"] == ["blue", "green", "red"] and resolved["steps_per_epoch"] == 3
    assert os.path.exists(workdir / "eval" / "confusion.png") and os.path.exists(workdir / "eval" / "results.json")
    exported = [os.path.join(d, f) for d, _, files in os.walk(workdir / "savedmodels") for f in files]
    assert any(path.endswith("saved_model.pb") for path in exported)
    assert "SavedModel for TF Serving" in resumed.stdout


# --------------------------------------------------------------------------- data


def test_folder_without_validation_holds_out_a_stratified_reproducible_split(tmp_path):
    folder = _image_folder(tmp_path / "images", per_class=5)
    first = finetune.folder_sources(str(folder), validation_fraction=0.4, seed=3)
    second = finetune.folder_sources(str(folder), validation_fraction=0.4, seed=3)
    paths = lambda source: sorted(e["image"].numpy() for e in source.dataset)  # noqa: E731
    assert first[0].num_examples == 9 and first[1].num_examples == 6  # 3 / 2 of each class of 5
    assert paths(first[0]) == paths(second[0]) and paths(first[1]) == paths(second[1])
    assert np.bincount(first[2]).tolist() == [3, 3, 3]
    assert not set(paths(first[0])) & set(paths(first[1]))
    os.rename(folder, tmp_path / "train")
    os.makedirs(tmp_path / "images")
    os.rename(tmp_path / "train", folder / "train")
    _image_folder(folder / "validation", per_class=2)
    train, held, labels = finetune.folder_sources(str(folder))
    assert (train.num_examples, held.num_examples, len(labels)) == (15, 6, 15)


def test_class_weights_and_label_smoothing():
    np.testing.assert_allclose(finetune.class_weights([0, 0, 0, 1], 3), [4 / 9, 4 / 3, 0.0], rtol=1e-6)
    loss = finetune.SmoothedSparseCrossentropy(0.1)
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], "float32")
    target = np.array([[0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3], [0.1 / 3, 0.1 / 3, 0.9 + 0.1 / 3]])
    expected = np.mean(-(target * np.log(probabilities)).sum(axis=1))
    assert float(loss(np.array([0, 2]), probabilities)) == pytest.approx(expected, rel=1e-5)
    assert keras.losses.deserialize(keras.losses.serialize(loss)).label_smoothing == 0.1


def test_heads_sizes_and_mixed_precision():
    source = _source()
    pooled = finetune.finetune_model(source, 3, head="pooled", crop_size=64, precision="mixed_bfloat16")
    assert pooled.input_shape == (None, 64, 64, 3) and pooled.output_shape == (None, 3)
    assert pooled.get_layer("block1_conv1").compute_dtype == "bfloat16"
    assert pooled.get_layer("predictions").compute_dtype == "float32"
    kept = finetune.finetune_model(source, 8, head="keep")
    assert _same(_values(kept, "predictions"), _values(source, "predictions"))
    assert finetune.set_trainable(kept, "all") == [
        layer.name for layer in kept.layers if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
    ]
    bare = vgg_keras.build("A", input_shape=(32, 32, 3), classes=8, width_multiplier=1 / 16, fc_units=32, base_size=32)
    added = finetune.finetune_model(bare, 4, preprocessing="caffe")
    assert added.get_layer("preprocessing").mode == "caffe" and added.output_shape == (None, 4)


# --------------------------------------------------------------------------- bad input


def test_sources_that_cannot_be_fine_tuned_fail_with_the_argument_named(tmp_path):
    config = tiny_config()
    config.model.arch, config.model.batch_norm = "A-LRN", False
    with pytest.raises(ValueError, match=r"finetune.source='imagenet' \(config.model.arch='A-LRN'\).*No published"):
        finetune.load_source_model(config)
    config.finetune.source = "imagenet-caffe"
    with pytest.raises(ValueError, match="neither a published weights tag nor an existing file; allowed: one of"):
        finetune.load_source_model(config)
    config.finetune.source = str(tmp_path / "missing.keras")
    with pytest.raises(FileNotFoundError, match="config.finetune.source=.*does not exist"):
        finetune.load_source_model(config)
    source = _source()
    with pytest.raises(ValueError, match="keeps the source's 8-class classifier, but the data has 5 classes"):
        finetune.finetune_model(source, 5, head="keep")
    with pytest.raises(ValueError, match=r"config.data.crop_size=64 .* allowed: crop_size=32, or head='pooled'"):
        finetune.finetune_model(source, 5, crop_size=64)
    with pytest.raises(ValueError, match="config.finetune.preprocessing='' but model .* has no preprocessing layer"):
        finetune.finetune_model(
            vgg_keras.build("A", input_shape=(32, 32, 3), width_multiplier=1 / 16, fc_units=32, base_size=32), 5
        )
    with pytest.raises(ValueError, match=r"unfreeze='fc': \['fc'\] name no layer"):
        finetune.set_trainable(finetune.finetune_model(source, 5, head="pooled"), "fc")


def test_folders_with_one_class_or_an_empty_class_are_refused(tmp_path):
    with pytest.raises(ValueError, match="config.data.name: .* is not a directory; allowed: 'folder:'"):
        finetune.folder_sources(str(tmp_path / "missing"))
    single = _image_folder(tmp_path / "single", classes=("only",))
    with pytest.raises(ValueError, match="has 1 class folder.*allowed: two or more class sub-folders"):
        finetune.folder_sources(str(single))
    empty = _image_folder(tmp_path / "empty", classes=("a", "b"))
    os.makedirs(empty / "c")
    with pytest.raises(ValueError, match=r"class folders \['c'\] .* hold no images"):
        finetune.folder_sources(str(empty))
    small = _image_folder(tmp_path / "small", classes=("a", "b"), per_class=1)
    with pytest.raises(ValueError, match="too few to hold out a validation image"):
        finetune.folder_sources(str(small))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("unfreeze", "block6", "allowed: 'all' or a comma-separated list of block1"),
        ("head", "new", "head='new'; allowed: 'predictions', 'pooled', 'keep'"),
        ("label_smoothing", 1.0, r"label_smoothing=1.0; allowed: a number in \[0, 1\)"),
        ("phase1_epochs", 0, "the new classifier must train before the base is unfrozen"),
        ("source", "", "allowed: a weights tag"),
        ("augmentation", "heavy", "'paper', 'light'"),
    ],
)
def test_bad_finetune_config_values(field, value, message):
    config = tiny_config()
    config.finetune[field] = value
    with pytest.raises(ValueError, match=message):
        finetune.validate_finetune_config(config)


def test_a_workdir_is_not_resumed_with_another_fine_tuning(tmp_path):
    os.makedirs(tmp_path / "run" / "phase1")
    recorded = tiny_config().to_dict()["finetune"]
    recorded["unfreeze"] = "all"
    (tmp_path / "run" / "phase1" / "config.json").write_text(json.dumps({"finetune": recorded}))
    data = training.synthetic_training_data(num_classes=8, image_size=32, batch_size=8)
    with pytest.raises(ValueError, match=r"finetune.unfreeze: 'all' -> 'block5,fc'\); use a new --workdir"):
        finetune.finetune_with_data(tiny_config(), str(tmp_path / "run"), data, _source)


def test_a_weights_file_source_brings_its_preprocessing(tmp_path):
    rgb = vgg_keras.build("A", batch_norm=True, include_top=False, input_shape=(32, 32, 3), width_multiplier=1 / 16)
    path = vgg_keras.weights.save_weights(rgb, str(tmp_path / "a.weights.h5"), preprocessing="torch")
    config = tiny_config(source=path, head="pooled")
    source = finetune.load_source_model(config)
    assert source.get_layer("preprocessing").mode == "torch"
    model = finetune.finetune_model(source, 3, head="pooled", crop_size=48)
    assert _same(_values(model, "block3_conv2"), _values(rgb, "block3_conv2")) and model.output_shape == (None, 3)


def test_phase2_of_a_pooled_fine_tuning_keeps_its_classifier(tmp_path):
    """Phase 2 rebuilds phase 1's model with head="keep": a pooled classifier has no fc layers (it failed before)."""
    config = tiny_config(head="pooled", unfreeze="block5")
    config.training.steps_per_epoch = 2
    data = training.synthetic_training_data(num_classes=3, image_size=32, batch_size=8)
    phase1, phase2 = finetune.finetune_with_data(config, str(tmp_path / "run"), data, lambda: _source(3))
    names = [layer.name for layer in phase2.model.layers]
    assert names[-3:] == ["avg_pool", "head_dropout", "predictions"] and "fc1" not in names
    assert vgg_keras.describe(phase2.model).classes == 3 and phase2.model.output_shape == (None, 3)
    trained = {finetune.layer_group(layer.name) for layer in phase2.model.layers if layer.trainable and layer.weights}
    assert trained == {"block5", "head"}
    assert not _same(_values(phase2.model, "block5_conv1"), _values(phase1.model, "block5_conv1"))
