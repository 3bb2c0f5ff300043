"""Table 3 row: net E trained at S in [256, 512] on ImageNet; paper: top-1 / top-5 error 25.5 / 8.0 % at Q=384.

Initialisation: fine-tuning the same net trained at S=384, lr 1e-3.

    python recipes/train.py --config=recipes/configs/e_s256_512.py --workdir=runs/e_s256_512 \
        --config.data.data_dir=/data/tfds --config.data.manual_dir=/data/imagenet
"""

from vgg_keras.training import config as config_lib


def get_config():
    return config_lib.paper_config("E", 256, 512)
