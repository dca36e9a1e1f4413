"""Checks every weight file's arrays and network must pass before anything is built from them.

Arrays: named by text, real finite numbers (integers and float16 converted, noted), not empty.
Networks: a stored description in range and taking a 28×28 image; a forward pass on a batch within a
memory budget (a hostile file's pads and widths could otherwise ask for tens of GiB).
"""
from __future__ import annotations

import math

import numpy as np

from engine.errors import WeightFileError
from engine.nn.spec_check import SpecError, spec_footprint
from engine.weightfiles.architectures import INPUT_PIXELS
from engine.weightfiles.text import describe_key

EVAL_BATCH = 1000  # engine.train.evaluation evaluates in batches of 1,000 (the probe uses 500)
TRAIN_BATCH = 100  # training keeps every layer's activations for a batch (the CLI's default batch size)
FORWARD_BUDGET = 2 << 30  # bytes one batch may need: the book's float64 DeepConvNet needs 1.2 GiB at 1,000 images


def check_arrays(params: dict, where: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """Every entry a finite floating-point array; integers are converted (noted), anything else refused."""
    notes = []
    out = {}
    if not params:
        raise WeightFileError(f"{where}: the file holds no weight arrays")
    for key, value in params.items():
        if not isinstance(key, str):
            raise WeightFileError(f"{where}: a weight is named {describe_key(key)}; names must be strings such as 'W1'")
        if not isinstance(value, np.ndarray):
            raise WeightFileError(f"{where}: {describe_key(key)} is a {type(value).__name__}, not a numpy array")
        key_text = describe_key(key)
        if value.dtype.kind in "iub":
            notes.append(f"{key_text} was stored as {value.dtype}; converted to float32")
            value = value.astype(np.float32)
        elif value.dtype == np.float16:
            notes.append(f"{key_text} was stored as float16; converted to float32")
            value = value.astype(np.float32)
        elif value.dtype.kind == "f" and value.dtype.itemsize > 8:  # long double: no BLAS, 100× slower matmuls
            notes.append(f"{key_text} was stored as {value.dtype}; converted to float64")
            value = value.astype(np.float64)
        elif value.dtype.kind != "f":
            raise WeightFileError(f"{where}: {key_text} has shape {value.shape} and dtype {value.dtype}; weights must be "
                                  "real numbers (float32 or float64)")
        if value.size == 0:
            raise WeightFileError(f"{where}: {key_text} has shape {value.shape}: it is empty")
        bad = int(value.size - np.count_nonzero(np.isfinite(value)))
        if bad:
            raise WeightFileError(f"{where}: {key_text} (shape {value.shape}) holds {bad} NaN or infinite value"
                                  f"{'s' if bad > 1 else ''}: the network diverged before it was saved")
        out[key] = value
    return out, notes


def check_stored_spec(spec: dict, where: str) -> None:
    """A DigitLab file's spec has the shape ``Network.spec()`` gives, sane numbers, and takes a 28×28 image."""
    try:
        spec_footprint(spec)
    except SpecError as exc:
        raise WeightFileError(f"{where}: the network description stored in the file is damaged ({exc})") from None
    if math.prod(spec["input_shape"]) != INPUT_PIXELS:
        raise WeightFileError(f"{where}: the network stored in the file takes input of shape {spec['input_shape']}, "
                              f"not a 28×28 image ({INPUT_PIXELS} pixels)")


def check_memory(spec: dict, params: dict, where: str) -> None:
    """Refuse a network whose forward pass on a batch would need more than ``FORWARD_BUDGET`` bytes."""
    try:
        peak, total = spec_footprint(spec)
    except SpecError as exc:
        raise WeightFileError(f"{where}: {exc}") from None
    itemsize = max([4] + [v.dtype.itemsize for v in params.values()])
    need = max(peak * EVAL_BATCH, 2 * total * TRAIN_BATCH) * itemsize  # training: activations and their gradients
    if need > FORWARD_BUDGET:
        raise WeightFileError(f"{where}: refused: running this network on a batch of {EVAL_BATCH:,} images would "
                              f"need {need / (1 << 30):,.1f} GiB (its layers' sizes, pads and strides), more than the "
                              f"{FORWARD_BUDGET / (1 << 30):g} GiB limit")
