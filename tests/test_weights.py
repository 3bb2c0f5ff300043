"""Published-weights registry and loaders: every format, both heads, parity with references."""

import h5py
import keras
import numpy as np
import pytest
from safetensors.numpy import save_file

import vgg_keras
from vgg_keras import weights as W
from vgg_keras.tools import reference

SMALL = dict(width_multiplier=0.125, fc_units=16, classes=10, base_size=32)
IMAGES = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")


def _small(arch="vgg16", weights=None, head="dense", **kwargs):
    shape = (32, 32, 3) if head == "dense" or not kwargs.get("include_top", True) else (None, None, 3)
    return vgg_keras.build(
        arch, weights=weights, head=head, input_shape=shape, classifier_activation=None, **{**SMALL, **kwargs}
    )


def _run(model, images=IMAGES):
    return keras.ops.convert_to_numpy(model(images, training=False))


def _rel_err(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _torchvision_state(arch, fc_units=16, classes=10, seed=0):
    """A torchvision-layout state dict of NumPy arrays (random, BN statistics non-trivial)."""
    rng = np.random.default_rng(seed)
    state = {}
    channels = 3
    for name, index in W.torchvision_layout(arch).items():
        if "_conv" in name:
            block = int(name[5])
            filters = {1: 8, 2: 16, 3: 32}.get(block, 64)
            fan_in = channels * 9
            state[f"features.{index}.weight"] = rng.normal(0, np.sqrt(2 / fan_in), (filters, channels, 3, 3))
            state[f"features.{index}.bias"] = rng.normal(0, 0.1, filters)
            channels = filters
        else:
            state[f"features.{index}.weight"] = rng.uniform(0.5, 1.5, channels)
            state[f"features.{index}.bias"] = rng.uniform(-0.5, 0.5, channels)
            state[f"features.{index}.running_mean"] = rng.uniform(-0.5, 0.5, channels)
            state[f"features.{index}.running_var"] = rng.uniform(0.5, 2.0, channels)
    for index, (n_in, n_out) in zip((0, 3, 6), ((channels, fc_units), (fc_units, fc_units), (fc_units, classes))):
        state[f"classifier.{index}.weight"] = rng.normal(0, np.sqrt(2 / n_in), (n_out, n_in))
        state[f"classifier.{index}.bias"] = rng.normal(0, 0.1, n_out)
    return {k: v.astype("float32") for k, v in state.items()}


def _write_legacy_h5(model, path):
    """The keras-applications published layout: layer_names / weight_names attributes."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        f.attrs["backend"], f.attrs["keras_version"] = b"tensorflow", b"2.2.4"
        for layer in model.layers:
            group = f.create_group(layer.name)
            kinds = ["W_1", "b_1"] if len(layer.weights) == 2 else [str(i) for i in range(len(layer.weights))]
            names = [f"{layer.name}_{kind}:0".encode() for kind in kinds]
            group.attrs["weight_names"] = names
            for name, value in zip(names, layer.get_weights()):
                group.create_dataset(name.decode(), data=value)
    return str(path)


# --------------------------------------------------------------------------- registry


def test_registry_covers_the_published_files():
    entries = {(e.arch, e.source): e for e in W.list_weights()}
    assert set(entries) == {("vgg16", "keras"), ("vgg19", "keras")} | {
        (a, "torchvision") for a in ("vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn")
    }
    vgg16 = entries["vgg16", "keras"]
    assert vgg16.file_for(True).file_hash == "64373286793e3c8b2b4e3219cbf3544b"
    assert vgg16.file_for(False).url.endswith("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
    assert (vgg16.preprocessing, vgg16.top1, vgg16.top5, vgg16.config) == ("caffe", 71.3, 90.1, "D")
    for entry in W.list_weights():
        if entry.source == "torchvision":
            (file,) = entry.files
            assert file.filename == f"{entry.arch}-{file.file_hash}.pth" and file.hash_kind == "sha256_prefix"
            assert entry.file_for(False) is file and entry.preprocessing == "torch"
    assert [e.source for e in W.list_weights("D")] == ["keras", "torchvision"]


@pytest.mark.parametrize(
    "arch,source",
    [
        ("vgg16", "keras"),
        ("vgg19", "keras"),
        ("vgg11", "torchvision"),
        ("vgg13", "torchvision"),
        ("vgg16_bn", "torchvision"),
    ],
)
def test_imagenet_picks_the_default_source(arch, source):
    assert W.resolve_weights("imagenet", arch).source == source
    assert W.resolve_weights("imagenet-torchvision", arch).source == "torchvision"
    assert W.preprocessing_mode_for("imagenet", arch) == {"keras": "caffe", "torchvision": "torch"}[source]


@pytest.mark.parametrize("builder", [vgg_keras.VGG11LRN, vgg_keras.VGG16C])
def test_no_published_weights_for_a_lrn_and_c(builder):
    with pytest.raises(ValueError, match="No published weights.*recipes/train.py"):
        builder(weights="imagenet", include_top=False, input_shape=(32, 32, 3), width_multiplier=0.125)


def test_bad_tags_list_the_allowed_ones():
    with pytest.raises(ValueError, match="imagenet-keras.*imagenet-torchvision"):
        vgg_keras.build("vgg16", weights="imagenet-caffe", include_top=False, input_shape=(32, 32, 3), **SMALL)
    with pytest.raises(ValueError, match="no file for vgg11.*'imagenet-torchvision'"):
        W.resolve_weights("imagenet-keras", "vgg11")


# --------------------------------------------------------------------------- torchvision / timm layouts


@pytest.mark.parametrize("arch", ["vgg16", "vgg11_bn", "vgg16_bn"])
@pytest.mark.parametrize("head", ["dense", "conv"])
def test_torchvision_safetensors_match_numpy_reference(tmp_path, arch, head):
    state = _torchvision_state(arch)
    path = tmp_path / "w.safetensors"
    save_file(state, str(path))
    model = _small(arch, str(path), head=head, include_preprocessing=True)
    expected = reference.numpy_forward(state, arch, IMAGES)
    assert _rel_err(_run(model), expected) < 1e-4
    assert W.preprocessing_mode_for(str(path)) == "torch"


def test_timm_safetensors_conv_shaped_head(tmp_path):
    state = _torchvision_state("vgg13")
    timm = {k: v for k, v in state.items() if k.startswith("features.")}
    timm["pre_logits.fc1.weight"] = state["classifier.0.weight"].reshape(16, 64, 1, 1)
    timm["pre_logits.fc2.weight"] = state["classifier.3.weight"][:, :, None, None]
    timm["head.fc.weight"] = state["classifier.6.weight"]
    for ours, theirs in (
        ("pre_logits.fc1", "classifier.0"),
        ("pre_logits.fc2", "classifier.3"),
        ("head.fc", "classifier.6"),
    ):
        timm[f"{ours}.bias"] = state[f"{theirs}.bias"]
    save_file(timm, str(tmp_path / "timm.safetensors"))
    model = _small("vgg13", str(tmp_path / "timm.safetensors"), include_preprocessing=True)
    assert _rel_err(_run(model), reference.numpy_forward(state, "vgg13", IMAGES)) < 1e-4


def test_include_top_false_skips_the_classifier_of_a_with_top_file(tmp_path):
    state = _torchvision_state("vgg16_bn")
    save_file(state, str(tmp_path / "w.safetensors"))
    full = _small("vgg16_bn", str(tmp_path / "w.safetensors"))
    features = _small("vgg16_bn", str(tmp_path / "w.safetensors"), include_top=False)
    expected = _run(keras.Model(full.inputs, full.get_layer("block5_pool").output))
    np.testing.assert_array_equal(_run(features), expected)


def test_torchvision_layout_is_derived_from_the_table():
    assert W.torchvision_layout("vgg16")["block5_conv3"] == 28  # torchvision: features.28 is the last conv
    layout = W.torchvision_layout("vgg19_bn")
    assert layout["block5_conv4"] == 49 and layout["block5_bn4"] == 50
    assert W.torchvision_layout("vgg11")["block2_conv1"] == 3


@pytest.mark.parametrize("arch", ["vgg16", "vgg13_bn"])
def test_torch_pth_parity(tmp_path, arch):
    torch = pytest.importorskip("torch")
    module = reference.torch_model(arch, width_multiplier=0.125, fc_units=16, classes=10, pool_size=1)
    torch.save(module.state_dict(), tmp_path / "w.pth")
    model = _small(arch, str(tmp_path / "w.pth"), include_preprocessing=True)
    assert _rel_err(_run(model), reference.torch_forward(module, IMAGES)) < 1e-4


@pytest.mark.slow
def test_full_vgg16_torchvision_pth_parity_at_224(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = reference.torch_model("vgg16")
    torch.save(module.state_dict(), tmp_path / "vgg16.pth")
    model = vgg_keras.VGG16(weights=str(tmp_path / "vgg16.pth"), classifier_activation=None)
    image = np.random.default_rng(1).uniform(0, 255, (1, 224, 224, 3)).astype("float32")
    ours = _run(model, vgg_keras.preprocessing.preprocess_input(image, mode="torch"))
    assert _rel_err(ours, reference.torch_forward(module, image)) < 1e-4


def test_pth_without_torch_says_how_to_install(tmp_path, monkeypatch):
    import sys
    import zipfile

    with zipfile.ZipFile(tmp_path / "w.pth", "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"vgg_keras\[torch\]"):
        _small("vgg16", str(tmp_path / "w.pth"))


# --------------------------------------------------------------------------- Keras files


def test_legacy_h5_notop_loads_like_keras_applications(tmp_path):
    source = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    path = _write_legacy_h5(source, tmp_path / "vgg16_notop.h5")
    theirs = keras.applications.VGG16(weights=path, include_top=False, input_shape=(32, 32, 3))
    ours = vgg_keras.VGG16(weights=path, include_top=False, input_shape=(32, 32, 3))
    np.testing.assert_array_equal(_run(ours), _run(theirs))
    assert W.preprocessing_mode_for(path) == "caffe"


@pytest.mark.slow
def test_legacy_h5_with_top_loads_like_keras_applications(tmp_path):
    theirs = keras.applications.VGG16(weights=None, classifier_activation=None)
    path = _write_legacy_h5(theirs, tmp_path / "vgg16.h5")
    ours = vgg_keras.VGG16(weights=path, classifier_activation=None)
    image = vgg_keras.preprocessing.preprocess_input(np.random.default_rng(2).uniform(0, 255, (1, 224, 224, 3)))
    np.testing.assert_array_equal(_run(ours, image), _run(theirs, image))


@pytest.mark.parametrize("save", ["legacy", "keras3", "keras_zip"])
def test_keras_files_load_into_both_heads_and_without_top(tmp_path, save):
    source = _small("vgg11_bn")
    source.get_layer("block1_bn1").moving_mean.assign(np.full(8, 0.3, "float32"))
    path = {"legacy": tmp_path / "w.h5", "keras3": tmp_path / "w.weights.h5", "keras_zip": tmp_path / "w.keras"}[save]
    if save == "legacy":
        _write_legacy_h5(source, path)
    elif save == "keras3":
        source.save_weights(path)
    else:
        source.save(path)
    expected = _run(source)
    for head in ("dense", "conv"):
        np.testing.assert_allclose(_run(_small("vgg11_bn", str(path), head=head)), expected, rtol=1e-5, atol=1e-5)
    features = _small("vgg11_bn", str(path), include_top=False)
    np.testing.assert_array_equal(features.get_layer("block1_bn1").moving_mean.numpy(), np.full(8, 0.3, "float32"))


def test_conv_head_file_loads_into_dense_head(tmp_path):
    source = _small("vgg11", head="conv")
    source.save_weights(tmp_path / "conv.weights.h5")
    dense = _small("vgg11", str(tmp_path / "conv.weights.h5"))
    np.testing.assert_allclose(_run(dense), _run(source), rtol=1e-5, atol=1e-5)


def test_save_weights_records_the_preprocessing(tmp_path):
    model = _small("vgg11", include_top=False)
    path = W.save_weights(model, str(tmp_path / "w.weights.h5"), preprocessing="mean_rgb")
    assert W.preprocessing_mode_for(path) == "mean_rgb"
    model.save_weights(tmp_path / "plain.weights.h5")
    assert W.preprocessing_mode_for(str(tmp_path / "plain.weights.h5"), default="torch") == "torch"
    np.testing.assert_array_equal(_small("vgg11", path, include_top=False).get_weights()[0], model.get_weights()[0])
    assert (
        _small("vgg11", path, include_top=False, include_preprocessing=True).get_layer("preprocessing").mode
        == "mean_rgb"
    )


# --------------------------------------------------------------------------- bad files


def test_file_for_another_architecture_lists_names_and_shapes(tmp_path):
    _small("vgg16").save_weights(tmp_path / "vgg16.weights.h5")
    with pytest.raises(ValueError, match=r"does not fit model 'vgg19'.*block5_conv4 missing from the file"):
        _small("vgg19", str(tmp_path / "vgg16.weights.h5"))
    state = _torchvision_state("vgg16")
    save_file(state, str(tmp_path / "vgg16.safetensors"))
    with pytest.raises(
        ValueError,
        match=r"vgg16\.safetensors does not fit vgg19: missing features\.16 \(block3_conv4\).*unexpected "
        r"features\.17\.bias \(64,\), features\.17\.weight \(64, 32, 3, 3\)",
    ):
        _small("vgg19", str(tmp_path / "vgg16.safetensors"))


def test_wrong_shapes_and_extra_tensors_are_listed(tmp_path):
    _small("vgg16", classes=7).save_weights(tmp_path / "w.weights.h5")
    with pytest.raises(ValueError, match=r"predictions: file \(16, 7\), \(7,\), model \(16, 10\), \(10,\)"):
        _small("vgg16", str(tmp_path / "w.weights.h5"))
    state = _torchvision_state("vgg11")
    state["extra.weight"] = np.zeros(3, "float32")
    save_file(state, str(tmp_path / "extra.safetensors"))
    with pytest.raises(ValueError, match=r"unexpected extra\.weight \(3,\)"):
        _small("vgg11", str(tmp_path / "extra.safetensors"))


@pytest.mark.parametrize("kind", ["h5", "safetensors", "garbage", "empty", "pth"])
def test_truncated_or_corrupt_files_give_a_clear_error(tmp_path, kind):
    path = tmp_path / f"w.{kind}"
    if kind == "h5":
        _small("vgg11").save_weights(tmp_path / "full.weights.h5")
        data = (tmp_path / "full.weights.h5").read_bytes()
    elif kind == "safetensors":
        save_file(_torchvision_state("vgg11"), str(tmp_path / "full.safetensors"))
        data = (tmp_path / "full.safetensors").read_bytes()
    elif kind == "pth":
        torch = pytest.importorskip("torch")
        torch.save({k: torch.from_numpy(v) for k, v in _torchvision_state("vgg11").items()}, tmp_path / "full.pth")
        data = (tmp_path / "full.pth").read_bytes()
    else:
        data = b"not a weights file at all" if kind == "garbage" else b""
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt|Unrecognised or corrupt"):
        _small("vgg11", str(path))


def test_missing_path_lists_the_tags():
    with pytest.raises(ValueError, match=r"neither None, a known tag \(imagenet, imagenet-keras"):
        _small("vgg11", "/nonexistent/file.h5")
