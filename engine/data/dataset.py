"""The in-memory dataset every loader returns: flat float32 pixels in [0, 1] and integer labels."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.errors import DatasetError
from engine.util import printable

DIGIT_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray | None  # (N, 784) float32 in [0, 1], or None for a test-only dataset
    t_train: np.ndarray | None  # (N,) int64
    x_test: np.ndarray
    t_test: np.ndarray
    classes: list[str] = field(default_factory=lambda: list(DIGIT_CLASSES))
    source: str = ""  # where it came from, for people: a path, a cache folder, a package

    @property
    def has_train(self) -> bool:
        return self.x_train is not None and len(self.x_train) > 0

    def require_train(self) -> None:
        if not self.has_train:
            raise DatasetError(
                f"dataset {printable(self.name)!r} has only test files ({printable(self.source)}); training needs "
                "train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] as well"
            )

    def __repr__(self) -> str:
        n_train = 0 if self.x_train is None else len(self.x_train)
        return f"Dataset({self.name!r}, train={n_train}, test={len(self.x_test)}, source={self.source!r})"
