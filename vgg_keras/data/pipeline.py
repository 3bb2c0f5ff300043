"""``tf.data`` pipelines for training and for the paper's evaluation protocols.

Training (section 3.1): isotropic rescale so the smallest side is S (fixed, or drawn per
image from [S_min, S_max]), one random ``crop_size`` crop, random horizontal flip, PCA
colour shift, then the model's normalisation (``preprocess``). The crop window is computed
in the original image's coordinates, so a JPEG is decoded (IDCT, colour conversion) only in
the window's columns from its top row down (``tf.image.decode_and_crop_jpeg``); PNG/GIF/BMP
are decoded whole and sliced. Output shapes are static, there is no ``py_function``, and
the pipelines run with AUTOTUNE parallelism and prefetch, so they can feed GPUs/TPUs.

Randomness is stateless: every example gets its own seed from
``tf.data.Dataset.random(seed)``, so with ``seed`` set the output is identical run to run
regardless of parallelism.

One policy for bad files, in every pipeline: an example is skipped if and only if a full
decode of its bytes fails (empty, corrupt or truncated data; :func:`find_undecodable`
lists exactly these). The training pipeline reads each JPEG's entropy-coded data to the
end (its decode runs from the window's top row to the image's last row), so a truncated
file is skipped even when the crop window lies in its readable rows. Each skip is logged
by ``tf.data`` (``ignore_errors(log_warning=True)``): a bad file never stops training.

``batch_size`` is the GLOBAL batch size. With an ``input_context`` (from
``strategy.distribute_datasets_from_function``), each pipeline yields
``input_context.get_per_replica_batch_size(batch_size)`` examples per batch and reads only
its shard of the source.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf
from absl import logging

from vgg_keras.data import augment, crops
from vgg_keras.data.sources import Source, shard_dataset
from vgg_keras.validation import check_int

DEFAULT_SHUFFLE_BUFFER = 10_000
_AUTOTUNE = tf.data.AUTOTUNE


# ------------------------------------------------------------------ argument checks


def scale_range(scale, crop_size: int) -> tuple[int, int]:
    """Normalises ``scale`` (S or (S_min, S_max)) to a checked ``(s_min, s_max)`` pair.

    Args:
      scale: S (int) or ``(S_min, S_max)``.
      crop_size: side of the crop taken at that scale.

    Returns:
      ``(s_min, s_max)`` as python ints (equal for a fixed S).

    Raises:
      ValueError: if ``scale`` is not an int or a pair of ints with
        ``crop_size <= s_min <= s_max``.
    """
    pair = (scale, scale) if isinstance(scale, int) and not isinstance(scale, bool) else scale
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ValueError(f"scale={scale!r}; allowed: an int S or a pair (S_min, S_max).")
    augment.check_scale_range(*pair)
    if pair[0] < crop_size:
        raise ValueError(
            f"scale={scale!r}; allowed: S >= crop_size ({crop_size}), since the crop "
            "is taken from the image rescaled to smallest side S."
        )
    return int(pair[0]), int(pair[1])


# --------------------------------------------------------------------------- ops


def decode_and_random_crop(encoded: tf.Tensor, crop_size: int, scale, seed=None, dct_method: str = "") -> tf.Tensor:
    """Decodes a random scale-S crop, touching only the crop window of a JPEG.

    Equivalent (up to resize interpolation) to: decode, rescale so the smallest side is S,
    take a random ``crop_size`` crop. Non-JPEG bytes (sniffed from content, not the file
    name) are decoded whole and then cropped. Grayscale/CMYK become RGB.

    Args:
      encoded: scalar ``tf.string`` with the encoded image.
      crop_size: side of the output crop.
      scale: S as a python int or int32 scalar tensor (e.g. from
        :func:`vgg_keras.data.augment.sample_scale`), ``>= crop_size``.
      seed: stateless seed ``[2]`` for the crop position, or ``None``.
      dct_method: passed to the JPEG decoder ("" = libjpeg default, "INTEGER_FAST" faster).

    Returns:
      ``float32 [crop_size, crop_size, 3]`` RGB in [0, 255].
    """
    return decode_and_random_crop_window(encoded, crop_size, scale, seed, dct_method)[0]


def decode_and_random_crop_window(
    encoded: tf.Tensor, crop_size: int, scale, seed=None, dct_method: str = ""
) -> tuple[tf.Tensor, tf.Tensor]:
    """:func:`decode_and_random_crop`, also returning where the crop lies in the image.

    Args:
      encoded: scalar ``tf.string`` with the encoded image.
      crop_size: side of the output crop.
      scale: S as a python int or int32 scalar tensor, ``>= crop_size``.
      seed: stateless seed ``[2]`` for the crop position, or ``None``.
      dct_method: passed to the JPEG decoder.

    Returns:
      ``(image, window)``: the ``float32 [crop_size, crop_size, 3]`` RGB [0, 255] crop and
      ``float32 [4]``, the crop's ``(top, left, height, width)`` as fractions of the
      image's height and width (e.g. to move boxes along with the pixels).
    """

    def window_for(shape):
        return augment.crop_window(shape, scale, crop_size, seed)

    def jpeg():
        shape = tf.image.extract_jpeg_shape(encoded)
        window = window_for(shape)
        # Decode down to the last row: libjpeg then consumes all the entropy-coded data, so
        # a truncated or corrupt file fails here exactly when a full decode fails (the
        # pipelines' one skip policy), at the cost of decoding the rows below the window
        # (Huffman decoding at full width, IDCT only in the window's columns).
        to_bottom = tf.stack([window[0], window[1], shape[0] - window[0], window[3]])
        pixels = tf.image.decode_and_crop_jpeg(encoded, to_bottom, channels=3, dct_method=dct_method)
        return pixels[: window[2]], window, shape

    def other():
        image = crops.decode_image(encoded)
        shape = tf.shape(image)
        window = window_for(shape)
        return tf.slice(image, tf.stack([window[0], window[1], 0]), tf.stack([window[2], window[3], 3])), window, shape

    window_pixels, window, shape = tf.cond(tf.io.is_jpeg(encoded), jpeg, other)
    window_pixels = tf.cast(window_pixels, tf.float32)

    def resize(antialias):
        return lambda: tf.image.resize(
            window_pixels, [crop_size, crop_size], method=crops.RESIZE_METHOD, antialias=antialias
        )

    # Antialiasing costs ~8x a plain bilinear resize; it only matters when shrinking by
    # more than 2x (with ImageNet-sized photos and S >= 256 the factor stays below 1.5).
    heavy_downscale = tf.shape(window_pixels)[0] > 2 * crop_size
    image = tf.cond(heavy_downscale, resize(True), resize(False))
    image.set_shape([crop_size, crop_size, 3])
    hw = tf.cast(shape[:2], tf.float32)
    return image, tf.cast(window, tf.float32) / tf.concat([hw, hw], axis=0)


def decode_resize(encoded: tf.Tensor, scale) -> tf.Tensor:
    """Decodes any supported format and rescales so the smallest side is ``scale``.

    Args:
      encoded: scalar ``tf.string`` with the encoded image.
      scale: smallest side after rescaling (python int or int scalar tensor).

    Returns:
      ``float32 [H, W, 3]`` RGB in [0, 255] with ``min(H, W) == scale``.
    """
    return crops.resize_smallest_side(crops.decode_image(encoded), scale)


# ----------------------------------------------------------------------- helpers


def _sharded(source: Source, input_context) -> tf.data.Dataset:
    """The source's dataset, sharded for ``input_context`` unless the source already is."""
    if not isinstance(source, Source):
        raise TypeError(f"source={source!r} of type {type(source).__name__}; allowed: a vgg_keras.data.Source.")
    if input_context is None or input_context.num_input_pipelines == 1:
        return source.dataset
    wanted = (input_context.num_input_pipelines, input_context.input_pipeline_id)
    if source.shard is None:
        return shard_dataset(source.dataset, input_context)
    if source.shard != wanted:
        raise ValueError(
            f"`source` holds shard {source.shard} but `input_context` asks for "
            f"{wanted}; build the source with the same input_context."
        )
    return source.dataset


def _replica_batch(batch_size: int, input_context) -> int:
    check_int("batch_size", batch_size)
    if input_context is None:
        return batch_size
    return input_context.get_per_replica_batch_size(batch_size)


def _options(deterministic: bool, num_threads: int | None) -> tf.data.Options:
    options = tf.data.Options()
    options.deterministic = deterministic
    if num_threads is not None:
        check_int("num_threads", num_threads)
        options.threading.private_threadpool_size = num_threads
    return options


def _seeds(seed: int | None, stream: int, input_context) -> tf.data.Dataset:
    """Infinite dataset of stateless seeds ``[2]``, distinct per stream and per worker."""
    if seed is not None:
        pipeline_id = 0 if input_context is None else input_context.input_pipeline_id
        seed = seed * 1_000_003 + pipeline_id * 101 + stream
    return tf.data.Dataset.random(seed=seed).batch(2)


def _apply(preprocess: Callable | None, images: tf.Tensor) -> tf.Tensor:
    return images if preprocess is None else preprocess(images)


def _check_preprocess(preprocess) -> None:
    if preprocess is not None and not callable(preprocess):
        raise TypeError(f"preprocess={preprocess!r}; allowed: callable or None.")


# --------------------------------------------------------------------- pipelines


def train_dataset(
    source: Source,
    *,
    batch_size: int,
    crop_size: int = 224,
    scale: int | tuple[int, int] = 256,
    flip: bool = True,
    color_shift_std: float = 0.1,
    preprocess: Callable | None = None,
    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
    seed: int | None = None,
    input_context=None,
    repeat: bool = True,
    drop_remainder: bool = True,
    augment_batches: bool = False,
    num_threads: int | None = None,
    dct_method: str = "",
) -> tf.data.Dataset:
    """The paper's training pipeline: scale jitter, random crop, flip, PCA colour shift.

    Args:
      source: a :class:`~vgg_keras.data.sources.Source`.
      batch_size: global batch size (see module docstring for ``input_context``).
      crop_size: side of the random crop (224 in the paper).
      scale: fixed S (e.g. 256 or 384) or ``(S_min, S_max)`` for scale jittering
        (``(256, 512)`` in the paper); S is the smallest side after rescaling.
      flip: random horizontal flip.
      color_shift_std: std of the PCA colour shift's alpha; 0 disables it.
      preprocess: called on each float32 ``[B, crop, crop, 3]`` RGB [0, 255] batch
        (e.g. the weights' normalisation); ``None`` leaves it to the model.
      shuffle_buffer: examples in the shuffle buffer (encoded bytes); 0 disables it.
      seed: makes shuffling and augmentation reproducible; ``None`` is nondeterministic
        (and lets ``tf.data`` reorder for speed).
      input_context: ``tf.distribute.InputContext`` for sharding and per-replica batch.
      repeat: repeat forever (one call to ``fit`` with ``steps_per_epoch``).
      drop_remainder: drop the last partial batch so the batch dimension is static.
      augment_batches: apply flip and colour shift to whole batches after batching
        (vectorised, as an accelerator would) instead of per example.
      num_threads: size of a private thread pool for this pipeline (``None``: TF's).
      dct_method: JPEG IDCT ("" = libjpeg default, "INTEGER_FAST" = faster, lossier).

    Returns:
      ``tf.data.Dataset`` of ``(images float32 [B, crop, crop, 3], labels int32 [B])``;
      images are RGB in [0, 255] unless ``preprocess`` is given.

    Raises:
      ValueError / TypeError: for invalid arguments.
    """
    check_int("crop_size", crop_size)
    s_min, s_max = scale_range(scale, crop_size)
    if color_shift_std < 0:
        raise ValueError(f"color_shift_std={color_shift_std!r}; allowed: a number >= 0.")
    check_int("shuffle_buffer", shuffle_buffer, minimum=0)
    _check_preprocess(preprocess)
    per_replica_batch = _replica_batch(batch_size, input_context)

    def flip_and_colour(image, seed_pair):
        flip_seed, colour_seed = augment.split_seed(seed_pair, 2)
        if flip:
            image = augment.random_flip(image, flip_seed)
        if color_shift_std:
            image = augment.pca_color_shift(image, color_shift_std, colour_seed)
        return image

    def example_fn(example, seed_pair):
        scale_seed, crop_seed, other_seed = augment.split_seed(seed_pair, 3)
        s = augment.sample_scale(s_min, s_max, scale_seed)
        image = decode_and_random_crop(example["image"], crop_size, s, crop_seed, dct_method)
        if not augment_batches:
            image = flip_and_colour(image, other_seed)
        return image, tf.cast(example["label"], tf.int32)

    dataset = _sharded(source, input_context)
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = tf.data.Dataset.zip((dataset, _seeds(seed, 0, input_context)))
    dataset = dataset.map(example_fn, num_parallel_calls=_AUTOTUNE)
    dataset = dataset.ignore_errors(log_warning=True)
    dataset = dataset.batch(per_replica_batch, drop_remainder=drop_remainder, num_parallel_calls=_AUTOTUNE)
    if augment_batches:
        dataset = tf.data.Dataset.zip((dataset, _seeds(seed, 1, input_context)))
        dataset = dataset.map(lambda batch, s: (flip_and_colour(batch[0], s), batch[1]), num_parallel_calls=_AUTOTUNE)
    if preprocess is not None:
        dataset = dataset.map(lambda x, y: (_apply(preprocess, x), y), num_parallel_calls=_AUTOTUNE)
    dataset = dataset.prefetch(_AUTOTUNE)
    return dataset.with_options(_options(seed is not None, num_threads))


def _eval_examples(source: Source, image_fn: Callable, preprocess, input_context, num_threads) -> tf.data.Dataset:
    """Maps ``image_fn`` over the (sharded) source, skipping undecodable images."""
    _check_preprocess(preprocess)

    def example_fn(example):
        return (_apply(preprocess, image_fn(example["image"])), tf.cast(example["label"], tf.int32))

    dataset = _sharded(source, input_context).map(example_fn, num_parallel_calls=_AUTOTUNE)
    return dataset.ignore_errors(log_warning=True).with_options(_options(True, num_threads))


def eval_dataset(
    source: Source,
    *,
    batch_size: int,
    scale: int = 256,
    crop_size: int = 224,
    preprocess: Callable | None = None,
    input_context=None,
    num_threads: int | None = None,
) -> tf.data.Dataset:
    """Centre-crop evaluation: smallest side to Q, central ``crop_size`` crop, in order.

    Args:
      source: a :class:`~vgg_keras.data.sources.Source`.
      batch_size: global batch size; the last batch may be smaller (nothing dropped).
      scale: test scale Q (smallest side after rescaling), ``>= crop_size``.
      crop_size: side of the centre crop.
      preprocess: called on each float32 ``[B, crop, crop, 3]`` RGB [0, 255] batch.
      input_context: ``tf.distribute.InputContext`` for sharding and per-replica batch.
      num_threads: size of a private thread pool (``None``: TF's).

    Returns:
      ``tf.data.Dataset`` of ``(images float32 [B, crop, crop, 3], labels int32 [B])``,
      in source order (deterministic).

    Raises:
      ValueError / TypeError: for invalid arguments.
    """
    check_int("crop_size", crop_size)
    check_int("scale", scale)
    scale_range(scale, crop_size)
    per_replica_batch = _replica_batch(batch_size, input_context)
    dataset = _eval_examples(
        source,
        lambda encoded: crops.center_crop(decode_resize(encoded, scale), crop_size),
        None,
        input_context,
        num_threads,
    )
    dataset = dataset.batch(per_replica_batch, num_parallel_calls=_AUTOTUNE, deterministic=True)
    if preprocess is not None:
        _check_preprocess(preprocess)
        dataset = dataset.map(lambda x, y: (preprocess(x), y), num_parallel_calls=_AUTOTUNE)
    return dataset.prefetch(_AUTOTUNE)


def dense_eval_examples(
    source: Source, *, scale: int, preprocess: Callable | None = None, input_context=None
) -> tf.data.Dataset:
    """Whole images at test scale Q for dense (fully-convolutional) evaluation.

    Args:
      source: a :class:`~vgg_keras.data.sources.Source`.
      scale: test scale Q; each image's smallest side becomes exactly Q.
      preprocess: called on each float32 ``[H, W, 3]`` RGB [0, 255] image.
      input_context: ``tf.distribute.InputContext`` for sharding.

    Returns:
      Unbatched ``tf.data.Dataset`` of ``(image float32 [H, W, 3], label int32 scalar)``;
      sizes vary per image, so batch them only with ``padded_batch``/ragged or run one by one.

    Raises:
      ValueError / TypeError: for invalid arguments.
    """
    check_int("scale", scale)
    dataset = _eval_examples(source, lambda encoded: decode_resize(encoded, scale), preprocess, input_context, None)
    return dataset.prefetch(_AUTOTUNE)


def multicrop_eval_examples(
    source: Source,
    *,
    scale: int,
    crop_size: int = 224,
    grid: int = 5,
    flips: bool = True,
    preprocess: Callable | None = None,
    input_context=None,
) -> tf.data.Dataset:
    """Multi-crop evaluation inputs: a ``grid x grid`` crop grid (+ flips) at scale Q.

    Args:
      source: a :class:`~vgg_keras.data.sources.Source`.
      scale: test scale Q (``>= crop_size``).
      crop_size: side of each crop.
      grid: crops per side (5 in the paper).
      flips: add the mirrored crops (the paper's 2 flips).
      preprocess: called on each float32 ``[N, crop, crop, 3]`` RGB [0, 255] crop stack.
      input_context: ``tf.distribute.InputContext`` for sharding.

    Returns:
      Unbatched ``tf.data.Dataset`` of ``(crops float32 [N, crop, crop, 3], label int32)``
      with ``N = grid * grid * (2 if flips else 1)`` (50 for the paper), ordered as
      :func:`vgg_keras.data.crops.multi_crop` documents.

    Raises:
      ValueError / TypeError: for invalid arguments.
    """
    check_int("crop_size", crop_size)
    check_int("scale", scale)
    scale_range(scale, crop_size)
    check_int("grid", grid)
    dataset = _eval_examples(
        source,
        lambda encoded: crops.multi_crop(decode_resize(encoded, scale), crop_size, grid, flips),
        preprocess,
        input_context,
        None,
    )
    return dataset.prefetch(_AUTOTUNE)


def find_undecodable(source: Source) -> list[int]:
    """Indices of the source's examples that cannot be decoded: exactly those every pipeline skips.

    One parallel pass over the source: every example is decoded whole (any format) and
    those raising a decode error are reported; a full decode failing is the pipelines'
    skip rule (module docstring), so the training and evaluation pipelines drop exactly
    these examples. The count is logged, so a dataset can be checked before a long run.

    Args:
      source: a :class:`~vgg_keras.data.sources.Source` (finite).

    Returns:
      Sorted indices (in ``source.dataset`` order) of undecodable examples.

    Raises:
      TypeError: if ``source`` is not a :class:`~vgg_keras.data.sources.Source`.
    """
    if not isinstance(source, Source):
        raise TypeError(f"source={source!r} of type {type(source).__name__}; allowed: a vgg_keras.data.Source.")
    decoded = (
        source.dataset.enumerate()
        .map(
            lambda index, example: (index, tf.shape(crops.decode_image(example["image"]))), num_parallel_calls=_AUTOTUNE
        )
        .ignore_errors()
    )
    good = {int(index) for index, _ in decoded.as_numpy_iterator()}
    total = int(source.dataset.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))
    bad = sorted(set(range(total)) - good)
    logging.warning(
        "%d of %d images cannot be decoded; the pipelines skip them%s",
        len(bad),
        total,
        f" (indices {bad[:20]}...)" if bad else "",
    )
    return bad
