"""Neural style transfer of one content image and one style image (Gatys et al. 2016, VGG19).

    python recipes/style_transfer.py --content=photo.jpg --style=painting.jpg \
        --output_dir=runs/style --size=384 --steps=500 --weights=imagenet

Optimises the image with Adam (cosine-decayed learning rate, pixels clipped to [0, 255]),
starting from the content image; content at relu4_2 (Gatys' conv4_2), style at relu1_1 ...
relu5_1 (see `vgg_keras.perceptual.style_transfer` for every choice). Writes
`<output_dir>/step_<n>.png` every `--save_every` steps and `<output_dir>/final.png`, each
written to a temporary file and renamed. `--weights` is a tag ("imagenet": the Keras VGG19
weights, downloaded once) or a weights file (offline: download it elsewhere and pass the
path); `--weights=none` uses a random network, which runs but gives no meaningful style.
A bad flag or a missing image ends in one `error:` line (exit code 2) before TensorFlow loads.
"""

import os

os.environ.setdefault("VGG_KERAS_DEFER_KERAS", "1")  # flags are checked before TensorFlow loads

from absl import flags

from vgg_keras import cli

_CONTENT = flags.DEFINE_string("content", None, "Content image file.")
_STYLE = flags.DEFINE_string("style", None, "Style image file.")
_OUTPUT = flags.DEFINE_string("output_dir", None, "Where the PNGs go.")
_WEIGHTS = flags.DEFINE_string("weights", "imagenet", "VGG19 weights: a tag, a weights file, or 'none' (random).")
_WIDTH = flags.DEFINE_float("width_multiplier", 1.0, "Conv width multiplier (small random demo networks only).")
_SIZE = flags.DEFINE_integer("size", 384, "Longer side of the output (the content image is resized to it).")
_STEPS = flags.DEFINE_integer("steps", 500, "Optimisation steps.")
_SAVE_EVERY = flags.DEFINE_integer("save_every", 50, "Write an intermediate PNG every N steps (0: none).")
_LR = flags.DEFINE_float("learning_rate", 4.0, "Adam's initial learning rate (pixel units), cosine-decayed to 1/10.")
_CONTENT_WEIGHT = flags.DEFINE_float("content_weight", 1.0, "Weight of the content term.")
_STYLE_WEIGHT = flags.DEFINE_float("style_weight", 1e-4, "Weight of the style term.")
_TV_WEIGHT = flags.DEFINE_float("tv_weight", 1e-6, "Weight of the squared total variation.")
_CONTENT_LAYER = flags.DEFINE_string("content_layer", "relu4_2", "Content layer (relu4_2 or block4_conv2).")
_STYLE_LAYERS = flags.DEFINE_list(
    "style_layers", ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"], "Style layers."
)
flags.mark_flags_as_required(["content", "style", "output_dir"])


def check():
    """Flag and file checks that need no TensorFlow: bad input fails before it loads."""
    for flag in (_CONTENT, _STYLE):
        if not os.path.isfile(flag.value):
            raise ValueError(f"--{flag.name}={flag.value!r} is not a file; allowed: an image file.")
    for flag, low in ((_SIZE, 16), (_STEPS, 1), (_SAVE_EVERY, 0)):
        if flag.value < low:
            raise ValueError(f"--{flag.name}={flag.value}; allowed: >= {low}.")


def main(argv):
    del argv
    # Imported here, so that TensorFlow loads only after `check` passed.
    from tqdm.auto import tqdm

    from vgg_keras import perceptual

    weights = None if _WEIGHTS.value.lower() == "none" else _WEIGHTS.value
    content = perceptual.load_image(_CONTENT.value, _SIZE.value)
    style = perceptual.load_image(_STYLE.value, _SIZE.value)
    bar = tqdm(total=_STEPS.value, desc="style transfer", unit="step")
    seen = {}

    def report(step, image, losses):
        seen.setdefault("first", losses)
        seen["last"] = losses
        bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items()}, refresh=False)
        bar.update(1)
        if _SAVE_EVERY.value and step % _SAVE_EVERY.value == 0:
            perceptual.save_image(image, os.path.join(_OUTPUT.value, f"step_{step:05d}.png"))

    image = perceptual.style_transfer(
        content,
        style,
        steps=_STEPS.value,
        weights=weights,
        width_multiplier=_WIDTH.value,
        content_layer=_CONTENT_LAYER.value,
        style_layers=_STYLE_LAYERS.value,
        content_weight=_CONTENT_WEIGHT.value,
        style_weight=_STYLE_WEIGHT.value,
        tv_weight=_TV_WEIGHT.value,
        learning_rate=_LR.value,
        callback=report,
    )
    bar.close()
    path = perceptual.save_image(image, os.path.join(_OUTPUT.value, "final.png"))
    first, last = seen["first"], seen["last"]
    print(
        "terms after step 1 -> step {}: {}".format(
            _STEPS.value, ", ".join(f"{k} {first[k]:.4g} -> {last[k]:.4g}" for k in first)
        )
    )
    print(f"Wrote {path} ({image.shape[1]}x{image.shape[0]}).")


if __name__ == "__main__":
    cli.run(main, check=check)
