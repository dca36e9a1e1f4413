"""Optimizers with one method, ``update(params, grads)``, over dicts of named arrays (updated in place).

State (velocities, squared-gradient sums) is created lazily on the first update,
so one optimizer can serve any network. Hyper-parameters may be changed between
updates with ``set(**values)``; bad values raise ``ValueError`` naming the value.

A network hands its parameters and gradients over as ``FlatParams``: the arrays are views of
one flat buffer, so each rule below runs once over the whole network (a few vectorised
operations per step, however many layers) instead of once per array. Plain dicts work too.
"""
from __future__ import annotations

import math

import numpy as np


class FlatParams(dict):
    """Named arrays that are consecutive views, in order, of the 1-D array ``flat``.

    ``layout`` ((name, shape), …) says which: two FlatParams with equal layouts line up element
    for element. It pickles and copies as a plain dict (the book's readers pickle ``network.params``).
    """

    def __init__(self, flat: np.ndarray, arrays: dict, layout: tuple) -> None:
        super().__init__(arrays)
        self.flat, self.layout = flat, layout

    @classmethod
    def gather(cls, arrays: dict, zeros: bool = False) -> "FlatParams | None":
        """Copies of ``arrays`` (or zeros shaped like them) as views of one new buffer; None if their dtypes differ."""
        dtypes = {np.asarray(a).dtype for a in arrays.values()}
        if len(dtypes) != 1 or next(iter(dtypes)).kind != "f":
            return None
        layout = tuple((name, np.shape(a)) for name, a in arrays.items())
        flat = np.zeros(sum(math.prod(shape) for _, shape in layout), dtype=dtypes.pop())
        views, start = {}, 0
        for name, shape in layout:
            size = math.prod(shape)
            views[name] = flat[start:start + size].reshape(shape)
            if not zeros:
                views[name][...] = arrays[name]
            start += size
        return cls(flat, views, layout)

    def __reduce__(self):
        return dict, (dict(self),)


def _zeros_like(params: dict) -> dict:
    """Optimizer state: zeros shaped like each parameter, as one flat buffer when possible."""
    return FlatParams.gather(params, zeros=True) or {k: np.zeros_like(v) for k, v in params.items()}


def _arrays(params: dict, grads: dict, *states: dict) -> list[tuple]:
    """(parameter, gradient, state…) arrays to update together.

    One tuple of whole flat buffers when all are FlatParams of one layout (one vectorised
    operation for the whole network), else one tuple per parameter name.
    """
    layout = getattr(params, "layout", None)
    if layout is not None and all(getattr(d, "layout", None) == layout for d in (grads, *states)):
        return [(params.flat, grads.flat, *(s.flat for s in states))]
    return [(params[k], grads[k], *(s[k] for s in states)) for k in params]


def _check(name: str, value, low: float, high: float | None = None, low_inclusive: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    bad = not math.isfinite(v) or (v < low if low_inclusive else v <= low) or (high is not None and v >= high)
    if bad:
        lo = f"{'≥' if low_inclusive else '>'} {low}"
        rng = f"{lo} and < {high}" if high is not None else lo
        raise ValueError(f"{name} must be {rng}, got {value!r}")
    return v


class Optimizer:
    """Base class: holds validated hyper-parameters."""

    name = "optimizer"
    # hyper-parameter -> (low bound, high bound or None, low inclusive)
    limits: dict = {"lr": (0.0, None, False)}
    _buffers: tuple = ()  # see _scratch

    def __init__(self, **values) -> None:
        self.set(**values)

    def set(self, **values) -> None:
        checked = {}
        for key, value in values.items():
            if key not in self.limits:
                raise ValueError(f"{self.name} has no hyper-parameter {key!r} (it has {', '.join(self.limits)})")
            checked[key] = _check(key, value, *self.limits[key])
        for key, value in checked.items():
            setattr(self, key, value)

    def hyperparameters(self) -> dict:
        return {key: getattr(self, key) for key in self.limits}

    def update(self, params: dict, grads: dict) -> None:
        raise NotImplementedError

    def _scratch(self, like: np.ndarray, count: int = 1) -> tuple[np.ndarray, ...]:
        """``count`` buffers shaped like ``like`` for a rule's intermediate values, kept while ``like`` keeps its shape
        (the whole network's flat buffer, one update after another): no temporaries allocated per step."""
        buffers = self._buffers
        if len(buffers) < count or buffers[0].shape != like.shape or buffers[0].dtype != like.dtype:
            buffers = self._buffers = tuple(np.empty_like(like) for _ in range(count))
        return buffers[:count]

    def _state(self, name: str, params: dict) -> dict:
        """Per-parameter state (velocities, squared-gradient sums), zeros on first use: one optimizer serves any network."""
        state = getattr(self, name)
        if state is None:
            state = _zeros_like(params)
            setattr(self, name, state)
        return state

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    name = "sgd"

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__(lr=lr)

    def update(self, params, grads):
        for p, g in _arrays(params, grads):
            (step,) = self._scratch(p)
            p -= np.multiply(g, self.lr, out=step)  # p -= lr * g


class Momentum(Optimizer):
    name = "momentum"
    limits = {"lr": (0.0, None, False), "momentum": (0.0, 1.0, True)}

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        super().__init__(lr=lr, momentum=momentum)
        self.v = None

    def update(self, params, grads):
        for p, g, v in _arrays(params, grads, self._state("v", params)):
            (step,) = self._scratch(p)
            v *= self.momentum
            v -= np.multiply(g, self.lr, out=step)  # v -= lr * g
            p += v


class Nesterov(Momentum):
    """Nesterov's accelerated gradient in the book's reformulation (evaluated at the current point).

    Same hyper-parameters and velocity as Momentum; only the step differs.
    """

    name = "nesterov"

    def update(self, params, grads):
        m, lr = self.momentum, self.lr
        for p, g, v in _arrays(params, grads, self._state("v", params)):
            # the step uses the velocity from before this update: x += m²·v - (1+m)·lr·g, then v = m·v - lr·g
            p += m * m * v
            p -= (1 + m) * lr * g
            v *= m
            v -= lr * g


class AdaGrad(Optimizer):
    name = "adagrad"
    limits = {"lr": (0.0, None, False), "eps": (0.0, None, False)}

    def __init__(self, lr: float = 0.01, eps: float = 1e-7) -> None:
        super().__init__(lr=lr, eps=eps)
        self.h = None

    def update(self, params, grads):
        for p, g, h in _arrays(params, grads, self._state("h", params)):
            h += g * g
            # eps keeps the first steps finite where a gradient has been exactly zero so far
            p -= self.lr * g / (np.sqrt(h) + self.eps)


class RMSprop(Optimizer):
    name = "rmsprop"
    limits = {"lr": (0.0, None, False), "decay": (0.0, 1.0, True), "eps": (0.0, None, False)}

    def __init__(self, lr: float = 0.01, decay: float = 0.99, eps: float = 1e-7) -> None:
        super().__init__(lr=lr, decay=decay, eps=eps)
        self.h = None

    def update(self, params, grads):
        for p, g, h in _arrays(params, grads, self._state("h", params)):
            h *= self.decay
            h += (1 - self.decay) * g * g
            p -= self.lr * g / (np.sqrt(h) + self.eps)


class Adam(Optimizer):
    """Adam with bias correction folded into the step size, as in the book."""

    name = "adam"
    limits = {
        "lr": (0.0, None, False),
        "beta1": (0.0, 1.0, True),
        "beta2": (0.0, 1.0, True),
        "eps": (0.0, None, False),
    }

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-7) -> None:
        super().__init__(lr=lr, beta1=beta1, beta2=beta2, eps=eps)
        self.iter = 0
        self.m = None
        self.v = None

    def update(self, params, grads):
        means, squares = self._state("m", params), self._state("v", params)
        self.iter += 1
        b1, b2 = self.beta1, self.beta2
        lr_t = self.lr * math.sqrt(1.0 - b2**self.iter) / (1.0 - b1**self.iter)
        for p, g, m, v in _arrays(params, grads, means, squares):
            # the book's three lines, operation for operation, in two reused buffers instead of eight temporaries
            t, u = self._scratch(p, 2)
            np.subtract(g, m, out=t)  # m += (1 - b1) * (g - m)
            t *= 1 - b1
            m += t
            np.multiply(g, g, out=t)  # v += (1 - b2) * (g * g - v)
            t -= v
            t *= 1 - b2
            v += t
            np.multiply(m, lr_t, out=u)  # p -= lr_t * m / (np.sqrt(v) + eps)
            np.sqrt(v, out=t)
            t += self.eps
            u /= t
            p -= u


OPTIMIZERS = {cls.name: cls for cls in (SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam)}
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.01, "rmsprop": 0.001, "adam": 0.001}


def make_optimizer(name: str, **values) -> Optimizer:
    """Optimizer by name (``sgd``, ``momentum``, ``nesterov``, ``adagrad``, ``rmsprop``, ``adam``)."""
    try:
        cls = OPTIMIZERS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}") from None
    values = {k: v for k, v in values.items() if v is not None and k in cls.limits}
    return cls(**values)
