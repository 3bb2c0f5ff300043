"""convert_weights: source file -> .weights.h5 + .keras, checked against the source model."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import ROOT
from safetensors.numpy import save_file

from vgg_keras import weights as W
from vgg_keras.tools import convert, reference

SMALL = dict(width_multiplier=0.125, fc_units=16, classes=10, base_size=32)


def test_convert_torch_file_and_compare(tmp_path):
    torch = pytest.importorskip("torch")
    module = reference.torch_model("vgg11_bn", width_multiplier=0.125, fc_units=16, classes=10, pool_size=1)
    torch.save(module.state_dict(), tmp_path / "src.pth")
    result = convert.convert_weights(str(tmp_path / "src.pth"), "vgg11_bn", str(tmp_path / "out" / "m"), **SMALL)
    assert result.preprocessing == "torch" and result.reference == "PyTorch (torchvision layout)"
    assert result.max_abs_diff < 1e-5  # softmax outputs
    assert W.preprocessing_mode_for(result.weights_path) == "torch"
    image = np.random.default_rng(3).uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    model = keras.saving.load_model(result.model_path)
    expected = keras.ops.convert_to_numpy(keras.activations.softmax(reference.torch_forward(module, image)))
    np.testing.assert_allclose(model.predict(image, verbose=0), expected, atol=1e-5)


@pytest.mark.slow  # a subprocess importing TensorFlow and PyTorch
def test_recipe_runs_and_reports(tmp_path):
    pytest.importorskip("torch")
    module = reference.torch_model("vgg13", width_multiplier=0.125, fc_units=16, classes=10, pool_size=1)
    state = {k: v.numpy() for k, v in module.state_dict().items()}
    save_file(state, str(tmp_path / "src.safetensors"))
    out = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "recipes", "convert_weights.py"),
            f"--source={tmp_path / 'src.safetensors'}",
            "--arch=B",
            f"--output={tmp_path / 'm'}",
            "--head=conv",
            "--width_multiplier=0.125",
            "--fc_units=16",
            "--classes=10",
            "--base_size=32",
            "--classifier_activation=none",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        cwd=tmp_path,  # any cwd works
        env={**os.environ, "PYTHONPATH": ROOT},
    ).stdout
    assert "max output difference vs PyTorch (torchvision layout)" in out
    diff = float(out.rsplit(":", 1)[1])
    assert diff < 1e-3 and (tmp_path / "m.weights.h5").exists() and (tmp_path / "m.keras").exists()
