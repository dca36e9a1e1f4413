"""The one check every view that shows a digit applies to the array it is given."""
from __future__ import annotations

import numpy as np


def as_2d_image(arr, where: str, error: type[Exception]) -> np.ndarray:
    """``arr`` as a 2-D array: 784 values become 28×28; anything else that is not a non-empty 2-D array raises
    ``error`` with a message starting with ``where``."""
    a = np.asarray(arr)
    if a.ndim == 1 and a.size == 784:
        a = a.reshape(28, 28)
    if a.ndim != 2 or a.size == 0:
        raise error(f"{where}: expected a 2-D image such as 28×28, got shape {a.shape}")
    return a
