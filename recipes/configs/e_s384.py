"""Table 3 row: net E trained at S=384 on ImageNet; paper: top-1 / top-5 error 26.9 / 8.7 % at Q=384.

Initialisation: the same net trained at S=256, lr 1e-3.

    python recipes/train.py --config=recipes/configs/e_s384.py --workdir=runs/e_s384 \
        --config.data.data_dir=/data/tfds --config.data.manual_dir=/data/imagenet
"""

from vgg_keras.training import config as config_lib


def get_config():
    return config_lib.paper_config("E", 384)
