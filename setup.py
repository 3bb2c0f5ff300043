"""Packaging for vgg_keras."""

import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "vgg_keras" / "__init__.py").read_text()).group(1)

ONNX = ["onnx>=1.23", "onnxruntime>=1.32", "tf2onnx>=1.17"]
EXTRAS = {
    "torch": ["torch>=2.1"],
    "serving": ["tensorflow-serving-api>=2.16"],
    # vgg_keras.export.export_onnx (Keras' own ONNX export: tf2onnx, or torch with the "torch" extra, the
    # low-memory route) and its parity report (onnxruntime).
    # The lower bounds are the versions verified with TensorFlow 2.21, Keras 3.15 and NumPy 2.4.
    "onnx": ONNX,
    # Every test runs in CI, none skipped: torchvision .pth parity and the conversion recipe
    # (torch, CPU is enough), JAX-backend models, the LPIPS reference, gRPC requests and the
    # models.config parse (tensorflow-serving-api), ONNX export. torch and torchvision are pinned as a pair.
    "test": [
        "pytest>=7",
        "pillow",
        "jax",
        "jaxlib",
        "torch==2.14.1",
        "torchvision==0.29.1",
        "lpips",
        "tensorflow-serving-api",
        *ONNX,
        "ruff==0.17.6",  # .ci/run checks formatting and lint; pinned, as each release formats a little differently
    ],
}

setup(
    name="vgg_keras",
    version=VERSION,
    description="The VGG family (Simonyan & Zisserman, ICLR 2015) for Keras 3 and TensorFlow: "
    "every configuration, the paper's training and evaluation protocol, TF Serving, TFLite and ONNX export.",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["vgg_keras", "vgg_keras.*"]),
    package_data={"vgg_keras": ["*.txt", "*.tsv", "*.json", "data/*.txt", "data/*.tsv", "data/*.json"]},
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.8,<3.16",  # 3.8: Model.export(input_signature=); run on 3.15.1; see vgg_keras/_keras_compat.py
        "tensorflow-datasets>=4.9",
        "keras-cv>=0.9",
        "absl-py",
        "ml_collections",
        "numpy",
        "h5py",
        "safetensors",
        "pillow",
        "matplotlib",
        "tqdm",
        "tensorboard",  # TensorBoard logs of the training recipes
        "importlib_resources",  # tensorflow-datasets' builders (imagenet2012, ...) import it
    ],
    extras_require=EXTRAS,
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
