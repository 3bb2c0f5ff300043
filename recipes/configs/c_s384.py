"""Table 3 row: net C trained at S=384 on ImageNet; paper: top-1 / top-5 error 28.1 / 9.3 % at Q=384.

Initialisation: the same net trained at S=256, lr 1e-3.

    python recipes/train.py --config=recipes/configs/c_s384.py --workdir=runs/c_s384 \
        --config.data.data_dir=/data/tfds --config.data.manual_dir=/data/imagenet
"""

from vgg_keras.training import config as config_lib


def get_config():
    return config_lib.paper_config("C", 384)
