"""Padding, strides and pooling of a CNN read from a state_dict: not stored, so enumerated from the shapes.

A PyTorch state_dict keeps each Conv2d's weights (filters, channels, k, k) but not its padding or
stride, and max-pooling holds no weights at all. What pins them down is the first Linear layer: it
takes exactly ``channels × side × side`` inputs, so only the layouts that bring a 28×28 image down
to that ``side`` can be the network. Each conv stage is a (pad, stride, pool) choice; the layouts
are searched in tiers, most common first (stride 1, pad 0 or "same", a 2×2 max-pool after every
conv, after the last one, or after every second one), and a probe batch of digits picks among the
few that fit. DigitLab's convolution and pooling take the floor of a window count, as PyTorch's
Conv2d and MaxPool2d (``ceil_mode=False``) do, so a layout that fits the shapes computes the same.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from engine.nn.conv import conv_output_size
from engine.nn.models import DEEP_PADS, INPUT_SHAPE

SIDE = INPUT_SHAPE[1]  # 28
MAX_CANDIDATES = 8  # layouts handed to the probe: each costs one forward pass over the probe digits
ENUMERATION_CAP = 4096  # layouts listed per tier before sorting: a deep stack of convs fits millions of ways
MAX_CONVS = 16  # more conv stages than any MNIST network has; bounds the search
MAX_KERNEL = SIDE  # a larger kernel only fits with more padding than the image has pixels
POOLS = ((2, 2), (3, 2))  # (size, stride): nn.MaxPool2d(2) and the 3×3, stride-2 pooling of AlexNet-style nets
EVERY, LAST, EVERY_SECOND, OTHER = range(4)  # where the max-pools sit, most common first


@dataclass(frozen=True)
class Stage:
    """What a state_dict does not store about one conv: its padding, stride, and the max-pool after it."""

    pad: int
    stride: int
    pool: tuple[int, int] | None  # (size, stride), or None for no pooling

    def describe(self, name: str) -> str:
        text = f"{name} pad {self.pad}" + (f" stride {self.stride}" if self.stride != 1 else "")
        if self.pool is None:
            return text
        size, stride = self.pool
        return text + f" + {size}×{size} max-pool" + (f" stride {stride}" if stride != size else "")


Layout = tuple  # of Stage, one per conv


def stage_side(side: int, kernel: int, stage: Stage) -> int | None:
    """The side of a square image after a conv stage, or None when a window does not fit."""
    out = conv_output_size(side, kernel, stage.stride, stage.pad)
    if out < 1:
        return None
    if stage.pool is not None:
        size, stride = stage.pool
        if out < size:
            return None
        out = conv_output_size(out, size, stride, 0)
    return out


def final_side(kernels: list[int], layout: Layout, side: int = SIDE) -> int | None:
    for kernel, stage in zip(kernels, layout):
        side = stage_side(side, kernel, stage)
        if side is None:
            return None
    return side


def _options(kernel: int, tier: int) -> list[Stage]:
    """The stages tried for one conv in a tier, most common first.

    Tier 1: stride 1, pad 0 or "same", 2×2 pools; 2: strides 1–2 and no pools (all-convolutional nets);
    3: both, and 3×3 pools; 4: every pad up to k − 1 too.
    """
    pads = list(dict.fromkeys([0, kernel // 2] + (list(range(1, kernel)) if tier >= 4 else [])))
    strides = (1,) if tier == 1 else (1, 2)
    pools = {1: ((2, 2), None), 2: (None,)}.get(tier, ((2, 2), None, (3, 2)))
    return [Stage(pad, stride, pool) for stride in strides for pool in pools for pad in pads]


def pool_pattern(layout: Layout) -> int:
    pooled = [stage.pool is not None for stage in layout]
    if all(pooled):
        return EVERY
    if pooled[-1] and not any(pooled[:-1]):
        return LAST
    if len(pooled) % 2 == 0 and pooled == [i % 2 == 1 for i in range(len(pooled))]:
        return EVERY_SECOND  # conv-conv-pool blocks, as in VGG and the book's DeepConvNet
    return OTHER


def style(layout: Layout) -> int:
    """0: stride 1 and pools in a common pattern; 1: strides instead of pools; 2: stride 1, pools elsewhere; 3: mixed."""
    strided = any(s.stride != 1 for s in layout)
    pooled = any(s.pool is not None for s in layout)
    if not strided:
        return 0 if pooled and pool_pattern(layout) != OTHER else 2
    return 1 if not pooled else 3


def preference(layout: Layout, kernels: list[int]) -> tuple:
    """Sort key, most likely first: the style, fewer strides, where the pools are, 2×2 pools, pad 0, "same", mixed."""
    ranks = tuple(0 if s.pad == 0 else 1 if s.pad == k // 2 else 2 for s, k in zip(layout, kernels))
    pads = 0 if not any(ranks) else 1 if set(ranks) == {1} else 2 if max(ranks) == 1 else 3
    return (style(layout), sum(s.stride != 1 for s in layout), pool_pattern(layout),
            sum(s.pool not in (None, POOLS[0]) for s in layout), pads, sum(ranks), ranks)


def _fitting(kernels: list[int], target: int, tier: int, cap: int) -> Iterator[Layout]:
    """Up to ``cap`` layouts of the tier that end at side ``target`` (a depth-first search cut where none can)."""
    options = [_options(k, tier) for k in kernels]
    reachable: dict[tuple[int, int], bool] = {}

    def can_reach(i: int, side: int) -> bool:
        if i == len(kernels):
            return side == target
        key = (i, side)
        if key not in reachable:
            reachable[key] = any((s := stage_side(side, kernels[i], o)) is not None and can_reach(i + 1, s)
                                 for o in options[i])
        return reachable[key]

    found = 0

    def walk(i: int, side: int, path: list) -> Iterator[Layout]:
        nonlocal found
        if i == len(kernels):
            found += 1
            yield tuple(path)
            return
        for option in options[i]:
            s = stage_side(side, kernels[i], option)
            if s is not None and can_reach(i + 1, s) and found < cap:
                yield from walk(i + 1, s, path + [option])

    if can_reach(0, SIDE):
        yield from walk(0, SIDE, [])


def count_fitting(kernels: list[int], target: int) -> int:
    """How many layouts of the widest tier (pads 0…k−1, strides 1–2, no pool / 2×2 / 3×3) end at ``target``."""
    options = [_options(k, 4) for k in kernels]
    memo: dict[tuple[int, int], int] = {}

    def count(i: int, side: int) -> int:
        if i == len(kernels):
            return int(side == target)
        key = (i, side)
        if key not in memo:
            memo[key] = sum(count(i + 1, s) for o in options[i] if (s := stage_side(side, kernels[i], o)) is not None)
        return memo[key]

    return count(0, SIDE)


def _known_layouts(kernels: list[int]) -> list[Layout]:
    """DigitLab's own layouts that the tiers rank low: the book's DeepConvNet pads its fourth conv by 2."""
    if kernels == [3] * len(DEEP_PADS):
        return [tuple(Stage(pad, 1, POOLS[0] if i % 2 else None) for i, pad in enumerate(DEEP_PADS))]
    return []


def layouts(kernels: list[int], target: int) -> list[Layout]:
    """Up to MAX_CANDIDATES layouts that bring a 28×28 image to ``target``×``target``, most likely first."""
    chosen = [layout for layout in _known_layouts(kernels) if final_side(kernels, layout) == target]
    for tier in (1, 2, 3, 4):
        found = _fitting(kernels, target, tier, ENUMERATION_CAP)
        if tier < 3:  # only the tier's own style: the rest of it comes sorted in tier 3
            found = (layout for layout in found if style(layout) == tier - 1)
        for layout in sorted(found, key=lambda layout: preference(layout, kernels)):
            if layout not in chosen:
                chosen.append(layout)
        if len(chosen) >= MAX_CANDIDATES:
            break
    return chosen[:MAX_CANDIDATES]


def common_sides(kernels: list[int]) -> list[int]:
    """Final sides of the usual layouts (pad 0, stride 1: no pooling, a pool after every conv, after the last), for messages."""
    n = len(kernels)
    tries = [(None,) * n, (POOLS[0],) * n, (None,) * (n - 1) + (POOLS[0],)]
    sides = [final_side(kernels, tuple(Stage(0, 1, pool) for pool in pools)) for pools in tries]
    return list(dict.fromkeys(s for s in sides if s is not None))
