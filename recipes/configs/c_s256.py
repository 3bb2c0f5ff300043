"""Table 3 row: net C trained at S=256 on ImageNet; paper: top-1 / top-5 error 28.1 / 9.4 % at Q=256.

Initialisation: first four convs and the FC layers of the trained net A (runs/a_s256).

    python recipes/train.py --config=recipes/configs/c_s256.py --workdir=runs/c_s256 \
        --config.data.data_dir=/data/tfds --config.data.manual_dir=/data/imagenet
"""

from vgg_keras.training import config as config_lib


def get_config():
    return config_lib.paper_config("C", 256)
