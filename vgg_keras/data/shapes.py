"""``vgg_shapes``: the built-in, procedurally generated image-classification dataset.

A TFDS ``GeneratorBasedBuilder`` that needs no download: 12 classes of shapes and
textures (one object per image, with its bounding box) drawn with NumPy/PIL on
gradient-and-noise backgrounds, JPEG-encoded at random sizes between 100 and 200 pixels.
Every image is a pure function of (split, index), so the dataset is identical on every
machine. Generating the default config (3000 train / 500 validation) takes seconds.

Usage::

    import tensorflow_datasets as tfds
    from vgg_keras.data import shapes  # registers the builder
    ds = tfds.load("vgg_shapes", split="train")            # default config
    ds = tfds.load("vgg_shapes/tiny", split="validation")  # 48 / 24 images, for tests
    ds = tfds.load("vgg_shapes/novel", split="train")      # 6 other classes, 10 images each

The ``novel`` config draws six classes that are not among the default's twelve
(``NOVEL_CLASS_NAMES``: new shapes and a texture) with another seed and only ten training
images per class: the fine-tuning demonstration (recipes/configs/finetune_shapes.py).

Data is written to TFDS' default ``data_dir`` (``~/tensorflow_datasets`` or
``$TFDS_DATA_DIR``) unless ``data_dir`` is given.
"""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from PIL import Image, ImageDraw

CLASS_NAMES = (
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "ring",
    "hexagon",
    "ellipse",
    "arrow",
    "heart",
    "stripes",
    "checker",
)
NOVEL_CLASS_NAMES = ("pentagon", "octagon", "diamond", "crescent", "trapezoid", "dots")
_SEED = 20150410
_SPLIT_IDS = {"train": 1, "validation": 2}
_SUPERSAMPLE = 2  # masks are drawn at 2x and box-filtered down: anti-aliased edges


@dataclasses.dataclass
class VggShapesConfig(tfds.core.BuilderConfig):
    """Builder config: how many images per split, their size range, classes and seed."""

    num_train: int = 3000
    num_validation: int = 500
    min_size: int = 100
    max_size: int = 200
    class_names: tuple = CLASS_NAMES
    seed: int = _SEED


def _regular_polygon(n: int, radius: float, angle: float) -> np.ndarray:
    t = angle + 2 * math.pi * np.arange(n) / n
    return radius * np.stack([np.cos(t), np.sin(t)], axis=1)


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return points @ np.array([[c, s], [-s, c]])


def _star(radius, angle, rng):
    inner = radius * rng.uniform(0.38, 0.5)
    outer = _regular_polygon(5, radius, angle)
    inner_pts = _regular_polygon(5, inner, angle + math.pi / 5)
    return np.stack([outer, inner_pts], axis=1).reshape(10, 2)


def _cross(radius, angle, rng):
    a = radius * rng.uniform(0.28, 0.38)  # half arm width
    r = radius * 0.95
    pts = np.array(
        [[a, r], [a, a], [r, a], [r, -a], [a, -a], [a, -r], [-a, -r], [-a, -a], [-r, -a], [-r, a], [-a, a], [-a, r]]
    )
    return _rotate(pts, angle)


def _ellipse(radius, angle, rng):
    t = np.linspace(0, 2 * math.pi, 64, endpoint=False)
    ratio = rng.uniform(0.38, 0.55)
    pts = np.stack([radius * np.cos(t), radius * ratio * np.sin(t)], axis=1)
    return _rotate(pts, angle)


def _arrow(radius, angle, rng):
    shaft = radius * rng.uniform(0.18, 0.26)
    head = radius * rng.uniform(0.6, 0.8)
    neck = radius * rng.uniform(0.0, 0.25)
    pts = np.array(
        [[-radius, -shaft], [neck, -shaft], [neck, -head], [radius, 0.0], [neck, head], [neck, shaft], [-radius, shaft]]
    )
    return _rotate(pts, angle)


def _diamond(radius, angle, rng):
    ratio = rng.uniform(0.45, 0.65)
    return _rotate(np.array([[radius, 0.0], [0.0, radius * ratio], [-radius, 0.0], [0.0, -radius * ratio]]), angle)


def _trapezoid(radius, angle, rng):
    top, half_height = radius * rng.uniform(0.35, 0.55), radius * 0.6
    return _rotate(
        np.array([[-radius, half_height], [radius, half_height], [top, -half_height], [-top, -half_height]]), angle
    )


def _heart(radius, angle, rng):
    t = np.linspace(0, 2 * math.pi, 64, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    pts = np.stack([x, y + 2.5], axis=1) * (radius / 17.0)
    return _rotate(pts, angle * 0.25 - math.pi / 8)  # hearts stay roughly upright


def _outline(name: str, radius: float, rng: np.random.Generator) -> np.ndarray:
    """Polygon (N x 2, centred at 0) of the object's outer contour."""
    angle = rng.uniform(0, 2 * math.pi)
    if name in ("circle", "ring", "crescent"):
        return _regular_polygon(64, radius, 0.0)
    if name in ("square", "stripes", "checker", "dots"):
        return _regular_polygon(4, radius, angle)
    if name in ("pentagon", "octagon"):
        return _regular_polygon(5 if name == "pentagon" else 8, radius, angle)
    if name == "triangle":
        return _regular_polygon(3, radius, angle)
    if name == "hexagon":
        return _regular_polygon(6, radius, angle)
    builders = {
        "star": _star,
        "cross": _cross,
        "ellipse": _ellipse,
        "arrow": _arrow,
        "heart": _heart,
        "diamond": _diamond,
        "trapezoid": _trapezoid,
    }
    return builders[name](radius, angle, rng)


def _background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Linear gradient between two random colours plus Gaussian noise, float [0,255]."""
    c0, c1 = rng.uniform(0, 255, (2, 3))
    theta = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = xx * math.cos(theta) + yy * math.sin(theta)
    t = (t - t.min()) / max(float(np.ptp(t)), 1.0)
    bg = c0 + (c1 - c0) * t[..., None]
    return bg + rng.normal(0, rng.uniform(2, 14), (h, w, 3))


def _contrasting_colour(reference: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random colour at least 110 (Euclidean RGB distance) away from ``reference``."""
    for _ in range(100):
        colour = rng.uniform(0, 255, 3)
        if np.linalg.norm(colour - reference) >= 110:
            return colour
    return 255.0 - reference


def _fill(name, h, w, colour, radius, rng) -> np.ndarray:
    """Foreground colour image: solid, or a two-colour texture for texture classes."""
    fg = np.broadcast_to(colour, (h, w, 3)).astype(np.float32)
    if name not in ("stripes", "checker", "dots"):
        return fg
    second = _contrasting_colour(colour, rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, math.pi)
    u = xx * math.cos(theta) + yy * math.sin(theta)
    period = 2 * radius / rng.uniform(3.0, 5.0)
    if name == "stripes":
        mask = (np.floor(u / (period / 2)) % 2).astype(bool)
    elif name == "dots":  # polka dots on a square grid
        v = -xx * math.sin(theta) + yy * math.cos(theta)
        mask = (u % period - period / 2) ** 2 + (v % period - period / 2) ** 2 < (0.3 * period) ** 2
    else:
        v = -xx * math.sin(theta) + yy * math.cos(theta)
        mask = ((np.floor(u / (period / 2)) + np.floor(v / (period / 2))) % 2).astype(bool)
    return np.where(mask[..., None], second, fg).astype(np.float32)


def _mask(name, polygon, cx, cy, h, w, rng) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of the object (ring: outer minus inner disc)."""
    k = _SUPERSAMPLE
    canvas = Image.new("L", (w * k, h * k), 0)
    draw = ImageDraw.Draw(canvas)
    draw.polygon([(k * (cx + x), k * (cy + y)) for x, y in polygon], fill=255)
    if name == "ring":
        inner = polygon * rng.uniform(0.5, 0.68)
        draw.polygon([(k * (cx + x), k * (cy + y)) for x, y in inner], fill=0)
    elif name == "crescent":  # a disc minus a shifted disc
        shift = _rotate(np.array([[rng.uniform(0.35, 0.55), 0.0]]), rng.uniform(0, 2 * math.pi))[0]
        inner = polygon * rng.uniform(0.8, 0.95) + shift * np.abs(polygon).max()
        draw.polygon([(k * (cx + x), k * (cy + y)) for x, y in inner], fill=0)
    small = canvas.resize((w, h), Image.BOX)
    return np.asarray(small, np.float32)[..., None] / 255.0


def generate_example(
    split: str,
    index: int,
    min_size: int = 100,
    max_size: int = 200,
    class_names: tuple = CLASS_NAMES,
    seed: int = _SEED,
) -> dict:
    """Draws image ``index`` of ``split``: a pure function of its arguments.

    Args:
      split: "train" or "validation".
      index: example index; the label is ``index % len(class_names)`` (balanced classes).
      min_size: smallest image side in pixels.
      max_size: largest image side in pixels.
      class_names: the classes drawn (``CLASS_NAMES`` or ``NOVEL_CLASS_NAMES``).
      seed: seed of the whole split (each config has its own).

    Returns:
      dict with "image" (JPEG bytes), "label" (int), "bbox" (ymin, xmin, ymax, xmax
      normalised floats) and "shape" ((height, width)).

    Raises:
      ValueError: for an unknown split or bad sizes.
    """
    if split not in _SPLIT_IDS:
        raise ValueError(f"split={split!r}; allowed: one of {sorted(_SPLIT_IDS)}.")
    if not 8 <= min_size <= max_size:
        raise ValueError(f"Need 8 <= `min_size` <= `max_size`, got {min_size}, {max_size}.")
    unknown = [name for name in class_names if name not in CLASS_NAMES + NOVEL_CLASS_NAMES]
    if unknown or not class_names:
        raise ValueError(
            f"`class_names` has unknown classes {unknown}; allowed: names from {CLASS_NAMES + NOVEL_CLASS_NAMES}."
        )
    rng = np.random.default_rng([seed, _SPLIT_IDS[split], index])
    label = index % len(class_names)
    name = class_names[label]
    h, w = (int(v) for v in rng.integers(min_size, max_size + 1, 2))
    bg = _background(h, w, rng)
    radius = 0.5 * min(h, w) * rng.uniform(0.4, 0.8)
    polygon = _outline(name, radius, rng)
    lo, hi = polygon.min(axis=0), polygon.max(axis=0)
    # Centre so that the whole object lies inside the image.
    cx = rng.uniform(-lo[0], w - hi[0])
    cy = rng.uniform(-lo[1], h - hi[1])
    colour = _contrasting_colour(bg.mean(axis=(0, 1)), rng)
    fg = _fill(name, h, w, colour, radius, rng)
    alpha = _mask(name, polygon, cx, cy, h, w, rng)
    image = np.clip(bg * (1 - alpha) + fg * alpha, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(rng.integers(75, 96)))
    bbox = (
        np.clip((cy + lo[1]) / h, 0, 1),
        np.clip((cx + lo[0]) / w, 0, 1),
        np.clip((cy + hi[1]) / h, 0, 1),
        np.clip((cx + hi[0]) / w, 0, 1),
    )
    return {"image": buffer.getvalue(), "label": label, "bbox": tuple(float(v) for v in bbox), "shape": (h, w)}


class VggShapes(tfds.core.GeneratorBasedBuilder):
    """Procedural shapes-and-textures classification dataset (no download)."""

    VERSION = tfds.core.Version("1.0.0")

    # TFDS's own lookup of the builder's source file needs the `importlib_resources`
    # backport; this module's path is all it needs (there are no checksum files).
    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:  # pylint: disable=no-self-argument
        return epath.Path(__file__)

    RELEASE_NOTES = {"1.0.0": "Initial release: 12 classes, bounding boxes; config novel: 6 other classes."}
    BUILDER_CONFIGS = [
        VggShapesConfig(name="default", description="3000 train / 500 validation images."),
        VggShapesConfig(
            name="tiny", description="48 train / 24 validation images (tests).", num_train=48, num_validation=24
        ),
        VggShapesConfig(
            name="novel",
            description="6 classes not in default, 10 train / 50 validation "
            "images per class (fine-tuning demonstration).",
            num_train=60,
            num_validation=300,
            class_names=NOVEL_CLASS_NAMES,
            seed=_SEED + 1,
        ),
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=__doc__.split("\n\n")[1],
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
                    "label": tfds.features.ClassLabel(names=list(self.builder_config.class_names)),
                    "bbox": tfds.features.BBoxFeature(),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        config = self.builder_config
        return {
            "train": self._generate_examples("train", config.num_train),
            "validation": self._generate_examples("validation", config.num_validation),
        }

    def _generate_examples(self, split: str, num_examples: int):
        config = self.builder_config
        for index in range(num_examples):
            example = generate_example(split, index, config.min_size, config.max_size, config.class_names, config.seed)
            yield (
                index,
                {"image": example["image"], "label": example["label"], "bbox": tfds.features.BBox(*example["bbox"])},
            )
