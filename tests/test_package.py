"""The package surface: every public name resolves, lazy sub-packages load on demand."""

import importlib
import subprocess
import sys

import pytest

import vgg_keras


def test_every_public_name_is_the_object_of_its_home_module():
    assert len(vgg_keras.__all__) == len(set(vgg_keras.__all__))
    for name in vgg_keras.__all__:
        home = "vgg_keras.configs" if name == "CONFIGS" else vgg_keras._MODEL_NAMES[name]
        assert getattr(vgg_keras, name) is getattr(importlib.import_module(home), name), name
    assert {"build", "VGG16", "list_weights", "preprocess_input", "convert_weights"} <= set(vgg_keras.__all__)


def test_old_root_entry_points_warn_and_point_to_their_subpackage():
    for name, module in vgg_keras._DEPRECATED_NAMES.items():
        assert name not in vgg_keras.__all__
        with pytest.warns(DeprecationWarning, match=f"use {module}.{name}"):
            assert getattr(vgg_keras, name) is getattr(importlib.import_module(module), name)
    assert {"train", "evaluate", "base_config", "make_strategy"} <= set(vgg_keras._DEPRECATED_NAMES)


@pytest.mark.parametrize(
    "module,old,new",
    [
        ("vgg_keras.preprocessing", "MODES", "PREPROCESSING_MODES"),
        ("vgg_keras.localization", "MODES", "LOCALIZER_MODES"),
        ("vgg_keras.export.signatures", "MODES", "SERVING_MODES"),
        ("vgg_keras.export.saved_model", "load_model", "as_keras_model"),
    ],
)
def test_renamed_names_keep_their_old_name_with_a_warning(module, old, new):
    module = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=new):
        assert getattr(module, old) is getattr(module, new)
    assert old not in getattr(module, "__all__", ())


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="VGG17"):
        _ = vgg_keras.VGG17


def test_import_does_not_load_the_heavy_subpackages():
    heavy = "('vgg_keras.training', 'vgg_keras.evaluation', 'vgg_keras.export')"
    code = f"import sys, vgg_keras; print(sorted(m for m in sys.modules if m.startswith({heavy})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def _python(code: str, **env) -> subprocess.CompletedProcess:
    import os  # noqa: PLC0415

    environment = {key: value for key, value in os.environ.items() if key != "VGG_KERAS_DEFER_KERAS"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**environment, **env}
    )


def test_import_registers_the_layers_so_keras_loads_saved_models(tmp_path):
    path = str(tmp_path / "m.keras")
    save = (
        "import vgg_keras; vgg_keras.build('A-LRN', weights=None, width_multiplier=1/16, fc_units=8, classes=3, "
        f"input_shape=(32, 32, 3), base_size=32, include_preprocessing=True).save({path!r})"
    )
    assert _python(save).returncode == 0
    # A new process that imports vgg_keras but uses none of its names, as a notebook would.
    load = (
        f"import vgg_keras, keras; m = keras.saving.load_model({path!r}); "
        "print(sorted({type(layer).__name__ for layer in m.layers} & {'LocalResponseNormalization', 'Preprocessing'}))"
    )
    result = _python(load)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "['LocalResponseNormalization', 'Preprocessing']"


def test_deferred_import_loads_no_tensorflow():
    code = (
        "import sys, vgg_keras, vgg_keras.cli, vgg_keras.training.config; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    result = _python(code, VGG_KERAS_DEFER_KERAS="1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False False"


def test_split_packages_reexport_every_public_name_from_their_submodules():
    import importlib

    for package in ("vgg_keras.weights", "vgg_keras.localization"):
        module = importlib.import_module(package)
        for name in module.__all__:
            value = getattr(module, name)
            if callable(value):  # functions and classes are defined in one of the package's own modules
                assert value.__module__.startswith(package + "."), (package, name, value.__module__)


def test_moved_tool_modules_warn_and_are_the_same_module():
    code = (
        "import warnings, vgg_keras.tools.reference as new\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import vgg_keras.reference as old\n"
        "print(old is new, [str(w.message) for w in caught if w.category is DeprecationWarning])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "True ['vgg_keras.reference is deprecated; use vgg_keras.tools.reference.']", (
        out.stderr[-2000:]
    )
