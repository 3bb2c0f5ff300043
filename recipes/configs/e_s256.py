"""Table 3 row: net E trained at S=256 on ImageNet; paper: top-1 / top-5 error 27.3 / 9.0 % at Q=256.

Initialisation: first four convs and the FC layers of the trained net A (runs/a_s256).

    python recipes/train.py --config=recipes/configs/e_s256.py --workdir=runs/e_s256 \
        --config.data.data_dir=/data/tfds --config.data.manual_dir=/data/imagenet
"""

from vgg_keras.training import config as config_lib


def get_config():
    return config_lib.paper_config("E", 256)
