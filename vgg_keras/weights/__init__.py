"""Published VGG weights: the registry (as data), download/verify/cache, and loaders.

One module per role: `registry` (the entries and tags), `download` (fetch, verify, cache),
`formats` (sniff and read every file format), `torch_layout` (torchvision / timm state
dicts), `assign` (set a model's layers by name) and `loading` (the entry points). Every
public name is re-exported here, so `vgg_keras.weights.load_weights` etc. keep working.

Tags accepted as ``weights=``:

- ``"imagenet"``: the default source of the architecture: Keras (the original Caffe
  weights) for vgg16 / vgg19, torchvision for vgg11, vgg13 and every ``_bn`` variant.
- ``"imagenet-keras"``: the keras-applications files (vgg16, vgg19; caffe preprocessing).
- ``"imagenet-torchvision"``: the torchvision files (vgg11 ... vgg19, with and without BN;
  torch preprocessing).

A path accepts Keras 3 ``.weights.h5`` and ``.keras`` files, legacy Keras HDF5 weight files
in the keras-applications layout (``layer_names`` / ``weight_names`` attributes),
torchvision ``.pth`` state dicts (needs PyTorch) and ``.safetensors`` files with torchvision
keys or timm keys (``pre_logits.fc1`` ..., ``head.fc``). Every format is read into one
form, ``{keras_layer_name: [arrays in Keras variable order]}``, and assigned by layer name,
so every file loads into the dense or the conv head and into ``include_top=False`` models.

Downloads are cached in ``$VGG_KERAS_CACHE`` if set, else ``$KERAS_HOME/models``
(default ``~/.keras/models``, shared with keras.applications), verified by hash, written to
a temporary file and renamed only once the hash matches. ``$VGG_KERAS_WEIGHTS_URL`` (or
``base_url=``) replaces the download base URL, e.g. for a local mirror.
"""

from vgg_keras.weights.assign import assign_weights
from vgg_keras.weights.download import BASE_URL_ENV, CACHE_ENV, WeightsDownloadError, cache_dir, fetch
from vgg_keras.weights.formats import PREPROCESSING_ATTR, TOP_LAYERS, read_state_dict, read_weights, sniff_format
from vgg_keras.weights.loading import check_weights_argument, load_weights, preprocessing_mode_for, save_weights
from vgg_keras.weights.registry import (
    HASH_KINDS,
    REGISTRY,
    TAGS,
    PretrainedWeights,
    WeightsFile,
    is_pretrained_tag,
    list_weights,
    resolve_weights,
)
from vgg_keras.weights.torch_layout import from_torch_layout, torchvision_layout

__all__ = [
    "BASE_URL_ENV",
    "CACHE_ENV",
    "HASH_KINDS",
    "PREPROCESSING_ATTR",
    "TOP_LAYERS",
    "check_weights_argument",
    "WeightsFile",
    "PretrainedWeights",
    "REGISTRY",
    "TAGS",
    "WeightsDownloadError",
    "list_weights",
    "is_pretrained_tag",
    "resolve_weights",
    "preprocessing_mode_for",
    "cache_dir",
    "fetch",
    "read_weights",
    "read_state_dict",
    "sniff_format",
    "from_torch_layout",
    "torchvision_layout",
    "assign_weights",
    "load_weights",
    "save_weights",
]
