"""The package's seams, read from its source: one module knows the layer names, and no module
reaches into another's private names (issue 16).
"""

import ast
import pathlib
import re

from helpers import ROOT

PACKAGE = pathlib.Path(ROOT) / "vgg_keras"
# Every layer name vgg_keras.models gives (keras.applications' scheme and its own additions).
LAYER_NAME = re.compile(
    r"^(preprocessing|block[1-5]_(conv|bn|relu)[1-9]|block[1-5]_pool|block1_lrn|flatten|fc[12]|fc[12]_dropout"
    r"|predictions|score_average|predictions_activation|avg_pool|max_pool|head_dropout)$"
)
# Where a layer name may stand outside models.py, and why: none of these learns the architecture.
ALLOWED = {
    ("configs.py", "predictions"): "the TensorFlow-free name of the predictions layer (models.PREDICTIONS_LAYER)",
    ("preprocessing.py", "preprocessing"): "the default name of the layer the module defines",
    ("export/client.py", "predictions"): "TF Serving's REST response key",
    ("weights/formats.py", "fc1"): "weights file layout",
    ("weights/formats.py", "fc2"): "weights file layout",
    ("weights/formats.py", "predictions"): "weights file layout",
    ("weights/torch_layout.py", "fc1"): "torchvision / timm key layout",
    ("weights/torch_layout.py", "fc2"): "torchvision / timm key layout",
    ("weights/torch_layout.py", "predictions"): "torchvision / timm key layout",
    ("training/finetune_config.py", "preprocessing"): "a config field (config.finetune.preprocessing)",
    ("training/finetune_config.py", "head_dropout"): "a config field (config.finetune.head_dropout)",
    ("training/finetune.py", "preprocessing"): "a config field (config.finetune.preprocessing)",
}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def _docstrings(tree) -> set[int]:
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, kinds) and node.body and isinstance(node.body[0], ast.Expr)
    }


def test_only_models_spells_layer_names():
    found = []
    for name, tree in _modules():
        if name == "models.py":
            continue
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and LAYER_NAME.match(node.value)
                and (name, node.value) not in ALLOWED
            ):
                found.append(f"vgg_keras/{name}:{node.lineno}: {node.value!r}")
    assert not found, "ask vgg_keras.describe(model) (or a vgg_keras.models constant) instead of:\n" + "\n".join(found)


def _private_uses(name: str, tree) -> list[str]:
    package = name.rsplit("/", 1)[0].replace("/", ".") if "/" in name else ""
    aliases, uses = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vgg_keras"):
            for alias in node.names:
                # A private module of one's own package (perceptual/_backbone) is the package's business.
                own = node.module == f"vgg_keras.{package}" if package else False
                # vgg_keras/_figures.py, _keras_compat.py, _deprecation.py: package-internal modules.
                internal = node.module == "vgg_keras" and (PACKAGE / f"{alias.name}.py").is_file()
                if alias.name.startswith("_") and not alias.name.startswith("__") and not (own or internal):
                    uses.append(f"vgg_keras/{name}:{node.lineno}: from {node.module} import {alias.name}")
                aliases.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            aliases.update((a.asname or a.name).split(".")[0] for a in node.names if a.name.startswith("vgg_keras"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            uses.append(f"vgg_keras/{name}:{node.lineno}: {node.value.id}.{node.attr}")
    return uses


def test_no_module_uses_another_modules_private_names():
    uses = [use for name, tree in _modules() for use in _private_uses(name, tree)]
    assert not uses, "give these a public (documented) home:\n" + "\n".join(uses)


def test_the_checks_catch_what_they_look_for():
    """Both scans find a planted case (so they are not vacuous)."""
    tree = ast.parse(
        '"""Doc naming fc1."""\nfrom vgg_keras.training import experiment\n'
        "from vgg_keras.weights.formats import _checked_path\n"
        'x = model.get_layer("block5_conv3")\ny = experiment._timed\n'
    )
    assert [u.split(": ", 1)[1] for u in _private_uses("training/x.py", tree)] == [
        "from vgg_keras.weights.formats import _checked_path",
        "experiment._timed",
    ]
    literals = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and id(n) not in _docstrings(tree)]
    assert [v for v in literals if LAYER_NAME.match(v)] == ["block5_conv3"]
