"""The package surface: every public name resolves, lazy sub-packages load on demand."""

import subprocess
import sys

import vgg_keras


def test_every_public_name_resolves():
    for name in vgg_keras.__all__:
        assert getattr(vgg_keras, name) is not None, name
    assert vgg_keras.evaluate is vgg_keras.evaluation.evaluate
    assert vgg_keras.export_saved_model is vgg_keras.export.export_saved_model


def test_unknown_attribute_is_an_attribute_error():
    try:
        vgg_keras.VGG17
    except AttributeError as error:
        assert "VGG17" in str(error)
    else:
        raise AssertionError("vgg_keras.VGG17 should not exist")


def test_import_does_not_load_the_heavy_subpackages():
    code = "import sys, vgg_keras; print(sorted(m for m in sys.modules if m.startswith(('vgg_keras.training', 'vgg_keras.evaluation', 'vgg_keras.export'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def _python(code: str, **env) -> subprocess.CompletedProcess:
    import os  # noqa: PLC0415

    environment = {key: value for key, value in os.environ.items() if key != "VGG_KERAS_DEFER_KERAS"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**environment, **env})


def test_import_registers_the_layers_so_keras_loads_saved_models(tmp_path):
    path = str(tmp_path / "m.keras")
    save = ("import vgg_keras; vgg_keras.build('A-LRN', weights=None, width_multiplier=1/16, fc_units=8, classes=3, "
            f"input_shape=(32, 32, 3), base_size=32, include_preprocessing=True).save({path!r})")
    assert _python(save).returncode == 0
    # A new process that imports vgg_keras but uses none of its names, as a notebook would.
    load = (f"import vgg_keras, keras; m = keras.saving.load_model({path!r}); "
            "print(sorted({type(layer).__name__ for layer in m.layers} & {'LocalResponseNormalization', 'Preprocessing'}))")
    result = _python(load)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "['LocalResponseNormalization', 'Preprocessing']"


def test_deferred_import_loads_no_tensorflow():
    code = "import sys, vgg_keras, vgg_keras.cli, vgg_keras.training.config; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    result = _python(code, VGG_KERAS_DEFER_KERAS="1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False False"
