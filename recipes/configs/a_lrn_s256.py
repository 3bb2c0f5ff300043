"""Table 3 row: net A-LRN trained at S=256 on ImageNet; paper: top-1 / top-5 error 29.7 / 10.5 % at Q=256.

Initialisation: random init (Glorot).

    python recipes/train.py --config=recipes/configs/a_lrn_s256.py --workdir=runs/a_lrn_s256 \
        --config.data.data_dir=/data/tfds --config.data.manual_dir=/data/imagenet
"""

from vgg_keras.training import config as config_lib


def get_config():
    return config_lib.paper_config("A-LRN", 256)
