"""Object localisation (Appendix A): box-regression heads on a VGG classifier.

The paper replaces the last fully-connected layer of a classification net with a
box predictor and fine-tunes all layers with a Euclidean loss:

- single-class regression (SCR): one box (4 outputs) shared by every class;
- per-class regression (PCR): one box per class (4 x classes outputs); the box of the
  ground-truth class is trained, the box of the predicted class is used at test time.

Boxes. Sources carry ``bbox`` as normalised ``(ymin, xmin, ymax, xmax)`` of the whole
image (keras-cv's ``"rel_yxyx"``). The heads predict the paper's ``(centre x, centre y,
width, height)`` normalised by the crop the network sees: keras-cv's ``"center_xywh"``
in a unit-sized image (``BOX_FORMAT``). Format conversion and IoU are keras-cv's
(`keras_cv.bounding_box.convert_format`, `compute_iou`); IoU does not change under the
per-axis scaling between normalised and pixel coordinates, so it is computed on
normalised boxes.

A prediction is correct when its class is right and its box overlaps the ground truth
with IoU > 0.5 (``IOU_THRESHOLD``); the top-k localisation error counts an image as
wrong unless one of its k (class, box) guesses is correct. Evaluation uses the paper's
first protocol: the central crop of the image rescaled to smallest side Q.

One module per role: `boxes` (formats, crop <-> image coordinates, IoU), `heads` (SCR /
PCR heads, loss), `datasets` (box training and evaluation examples), `training` and
`evaluation` (errors, report, figure). Every public name is re-exported here.

Typical use::

    from vgg_keras import data, localization
    localizer = localization.build_localizer(classifier, mode="pcr")
    train = localization.box_train_dataset(data.get_source("builtin", "train"), batch_size=32,
                                           crop_size=64, scale=(64, 80))
    localization.train_localizer(localizer, train, steps_per_epoch=90, epochs=10)
    report = localization.evaluate_localization(localizer, data.get_source("builtin", "validation"),
                                                classifier=classifier, scale=64, crop_size=64,
                                                output_dir="runs/localization")
"""

from vgg_keras._deprecation import deprecated_attributes
from vgg_keras.localization.boxes import (
    BOX_FORMAT,
    IOU_THRESHOLD,
    box_iou,
    crop_boxes_to_image,
    from_center_xywh,
    image_boxes_to_crop,
    to_center_xywh,
)
from vgg_keras.localization.datasets import box_eval_dataset, box_train_dataset
from vgg_keras.localization.evaluation import (
    LocalizationReport,
    evaluate_localization,
    localization_errors,
    localization_figure,
)
from vgg_keras.localization.heads import (
    BOX_LAYER,
    LOCALIZER_MODES,
    ClassBoxSelection,
    box_training_model,
    build_localizer,
    euclidean_loss,
    localizer_mode,
    select_class_boxes,
)
from vgg_keras.localization.training import train_localizer

__all__ = [
    "BOX_FORMAT",
    "BOX_LAYER",
    "IOU_THRESHOLD",
    "LOCALIZER_MODES",
    "ClassBoxSelection",
    "LocalizationReport",
    "box_eval_dataset",
    "box_iou",
    "box_train_dataset",
    "box_training_model",
    "build_localizer",
    "crop_boxes_to_image",
    "euclidean_loss",
    "evaluate_localization",
    "from_center_xywh",
    "image_boxes_to_crop",
    "localization_errors",
    "localization_figure",
    "localizer_mode",
    "select_class_boxes",
    "to_center_xywh",
    "train_localizer",
]

__getattr__ = deprecated_attributes(__name__, {"MODES": ("vgg_keras.localization.heads", "LOCALIZER_MODES")})
