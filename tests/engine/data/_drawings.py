"""Drawings made the way the canvas makes them, for measuring the "not a digit" check.

Each drawing is strokes of the canvas's pen (a soft round brush of radius 10 on the 280×280 pad, the
profile of ``widgets.canvas.stamp_segment``, which engine tests may not import) at a random size and
place, then the canvas's preprocessing (``mnist_preprocess``). Seeded: the same set on every run.

``non_digits``: six kinds, scribbles, dense fills, blobs, shapes, letters and symbols, random strokes.
Letters a reader could take for a digit (O 0, I 1, S 5, Z 2, B 8, G 6, q 9, and L, T, J, C, U, P, Y,
b, d, g, V, y) are not among them: they are ``DIGIT_LIKE_LETTERS``, measured apart. ``DIGITS`` are
digits written with the same pen, the other side of the measurement.
"""
from __future__ import annotations

import numpy as np

from engine.data.preprocess import mnist_preprocess

PAD = 280
PEN = 10.0  # the canvas's default brush radius (resolution / 28)
Stroke = list  # [(x, y), ...] in a unit square, y down


def stamp(pad: np.ndarray, p0, p1, radius: float = PEN) -> None:
    """Ink a soft round segment into ``pad``: full ink within 60 % of the radius, a Gaussian edge beyond."""
    h, w = pad.shape
    core, sigma = 0.6 * radius, 0.35 * radius
    reach = core + 3.0 * sigma
    (x0, y0), (x1, y1) = p0, p1
    left, right = max(int(np.floor(min(x0, x1) - reach)), 0), min(int(np.ceil(max(x0, x1) + reach)) + 1, w)
    top, bottom = max(int(np.floor(min(y0, y1) - reach)), 0), min(int(np.ceil(max(y0, y1) + reach)) + 1, h)
    if left >= right or top >= bottom:
        return
    ys = np.arange(top, bottom, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(left, right, dtype=np.float32)[None, :] + 0.5
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / length2, 0, 1) if length2 > 1e-12 else np.zeros((1, 1))
    dist = np.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy))
    ink = np.exp(-0.5 * (np.maximum(dist - core, 0) / sigma) ** 2).astype(np.float32)
    ink[dist > reach] = 0
    region = pad[top:bottom, left:right]
    np.maximum(region, ink, out=region)


def render(strokes: list[Stroke], rng: np.random.Generator, size: tuple[float, float] = (120, 250)) -> np.ndarray:
    """Strokes (in a unit square) drawn on the pad at a random size and place -> the network's 28×28 input."""
    side = rng.uniform(*size)
    x0, y0 = rng.uniform(5, PAD - side - 5, size=2)
    pad = np.zeros((PAD, PAD), np.float32)
    for stroke in strokes:
        points = [(x0 + x * side, y0 + y * side) for x, y in stroke]
        for a, b in zip(points, points[1:] or points):
            stamp(pad, a, b)
    return mnist_preprocess(pad)


def arc(cx, cy, rx, ry, start_degrees, end_degrees, n=24) -> Stroke:
    t = np.radians(np.linspace(start_degrees, end_degrees, n))
    return list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t)))


def jitter(strokes: list[Stroke], rng: np.random.Generator, amount: float = 0.02) -> list[Stroke]:
    """A hand's variation: a small random slant, stretch and turn, each stroke a little off its place."""
    angle = np.radians(rng.normal(0, 6))
    shear, stretch = rng.normal(0, 0.12), rng.uniform(0.8, 1.2)
    m = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) @ [[stretch, shear], [0, 1]]
    out = []
    for stroke in strokes:
        pts = (np.asarray(stroke, float) - 0.5) @ m.T + 0.5 + rng.normal(0, amount, 2)
        out.append([tuple(p) for p in pts + rng.normal(0, amount / 4, pts.shape)])
    return out


# ----- the kinds of non-digits -----

def scribble(rng) -> list[Stroke]:
    """One long stroke scribbled back and forth, or looping around the pad."""
    n = rng.integers(12, 40)
    if rng.random() < 0.5:  # zig-zag hatching
        ys = np.linspace(0, 1, n) + rng.normal(0, 0.03, n)
        xs = np.where(np.arange(n) % 2 == 0, rng.uniform(0, 0.2, n), rng.uniform(0.8, 1, n))
        return [list(zip(xs, ys))]
    t = np.linspace(0, rng.uniform(4, 9) * 2 * np.pi, n * 4)  # loops wandering over the pad
    cx = 0.5 + 0.3 * np.sin(t / rng.uniform(3, 6))
    cy = 0.5 + 0.3 * np.cos(t / rng.uniform(3, 6))
    r = rng.uniform(0.15, 0.3)
    return [list(zip(cx + r * np.cos(t), cy + r * np.sin(t)))]


def dense_fill(rng) -> list[Stroke]:
    """A box, disc or triangle coloured in with tight strokes."""
    kind = rng.integers(3)
    strokes = []
    for i, y in enumerate(np.linspace(0, 1, rng.integers(8, 16))):
        half = 0.5 if kind == 0 else (np.sqrt(max(0.25 - (y - 0.5) ** 2, 0.0)) if kind == 1 else y / 2)
        a, b = (0.5 - half, y), (0.5 + half, y)
        strokes.append([a, b] if i % 2 == 0 else [b, a])
    return [sum(strokes, [])] if rng.random() < 0.5 else strokes


def blob(rng) -> list[Stroke]:
    """An irregular solid blob: a wobbly outline filled by spiralling in."""
    k = rng.integers(3, 6)
    phases, amps = rng.uniform(0, 2 * np.pi, k), rng.uniform(0.03, 0.12, k)
    t = np.linspace(0, 2 * np.pi * rng.integers(4, 8), 400)
    r = 0.45 + sum(a * np.sin((i + 2) * t + p) for i, (a, p) in enumerate(zip(amps, phases)))
    r = r * np.linspace(1, 0.05, t.size)
    return [list(zip(0.5 + r * np.cos(t), 0.5 + r * np.sin(t)))]


def random_strokes(rng) -> list[Stroke]:
    """Three to six unrelated straight strokes anywhere on the pad."""
    return [[tuple(p) for p in rng.uniform(0, 1, (rng.integers(2, 5), 2))] for _ in range(rng.integers(3, 7))]


def _star(points: int = 5) -> list[Stroke]:
    angles = np.radians(-90 + np.arange(points + 1) * 720 / points)
    return [list(zip(0.5 + 0.5 * np.cos(angles), 0.5 + 0.5 * np.sin(angles)))]


_SPIRAL_T = np.linspace(0, 6 * np.pi, 80)
SHAPES = {
    "square": [[(0, 0), (1, 0), (1, 1), (0, 1), (0, 0)]],
    "triangle": [[(0.5, 0), (1, 1), (0, 1), (0.5, 0)]],
    "star": _star(5),
    "hash": [[(0.35, 0), (0.25, 1)], [(0.75, 0), (0.65, 1)], [(0, 0.35), (1, 0.35)], [(0, 0.7), (1, 0.7)]],
    "grid": [[(x, 0), (x, 1)] for x in (0, 0.33, 0.66, 1)] + [[(0, y), (1, y)] for y in (0, 0.33, 0.66, 1)],
    "spiral": [list(zip(0.5 + _SPIRAL_T / 12 / np.pi * np.cos(_SPIRAL_T), 0.5 + _SPIRAL_T / 12 / np.pi
                        * np.sin(_SPIRAL_T)))],
    "smiley": [arc(0.5, 0.5, 0.5, 0.5, 0, 360), [(0.33, 0.35), (0.33, 0.38)], [(0.67, 0.35), (0.67, 0.38)],
               arc(0.5, 0.55, 0.25, 0.2, 20, 160)],
    "heart": [arc(0.27, 0.3, 0.23, 0.23, 150, 360) + arc(0.73, 0.3, 0.23, 0.23, 180, 390) + [(0.5, 1.0), (0.06, 0.42)]],
    "concentric circles": [arc(0.5, 0.5, r, r, 0, 360) for r in (0.5, 0.3, 0.1)],
    "arrow": [[(0, 0.5), (1, 0.5)], [(0.7, 0.25), (1, 0.5), (0.7, 0.75)]],
    "plus": [[(0.5, 0), (0.5, 1)], [(0, 0.5), (1, 0.5)]],
    "cross": [[(0, 0), (1, 1)], [(1, 0), (0, 1)]],
    "asterisk": [[(0.5, 0), (0.5, 1)], [(0, 0.5), (1, 0.5)], [(0.15, 0.15), (0.85, 0.85)], [(0.85, 0.15), (0.15, 0.85)]],
    "house": [[(0, 1), (0, 0.4), (0.5, 0), (1, 0.4), (1, 1), (0, 1)], [(0.4, 1), (0.4, 0.7), (0.6, 0.7), (0.6, 1)]],
    "wave": [list(zip(np.linspace(0, 1, 60), 0.5 + 0.25 * np.sin(np.linspace(0, 6 * np.pi, 60))))],
    "equals": [[(0, 0.35), (1, 0.35)], [(0, 0.65), (1, 0.65)]],
    "horizontal line": [[(0, 0.5), (1, 0.5)]],
    "parallel lines": [[(x, 0), (x, 1)] for x in (0, 0.25, 0.5, 0.75, 1)],
    "dots": [[(x, y), (x + 0.01, y)] for x in (0.1, 0.5, 0.9) for y in (0.1, 0.5, 0.9)],
    "diamond": [[(0.5, 0), (1, 0.5), (0.5, 1), (0, 0.5), (0.5, 0)]],
}

LETTERS = {  # letters and symbols no reader takes for a digit
    "A": [[(0, 1), (0.5, 0), (1, 1)], [(0.22, 0.6), (0.78, 0.6)]],
    "E": [[(1, 0), (0, 0), (0, 1), (1, 1)], [(0, 0.5), (0.7, 0.5)]],
    "F": [[(1, 0), (0, 0), (0, 1)], [(0, 0.5), (0.7, 0.5)]],
    "H": [[(0, 0), (0, 1)], [(1, 0), (1, 1)], [(0, 0.5), (1, 0.5)]],
    "K": [[(0, 0), (0, 1)], [(1, 0), (0, 0.55), (1, 1)]],
    "M": [[(0, 1), (0, 0), (0.5, 0.6), (1, 0), (1, 1)]],
    "N": [[(0, 1), (0, 0), (1, 1), (1, 0)]],
    "W": [[(0, 0), (0.25, 1), (0.5, 0.3), (0.75, 1), (1, 0)]],
    "X": [[(0, 0), (1, 1)], [(1, 0), (0, 1)]],
    "R": [[(0, 1), (0, 0)] + arc(0.35, 0.25, 0.4, 0.25, -90, 90) + [(0, 0.5), (1, 1)]],
    "Q": [arc(0.5, 0.45, 0.45, 0.45, 0, 360), [(0.6, 0.7), (1, 1)]],
    "m": [[(0, 1), (0, 0.3)] + arc(0.25, 0.5, 0.25, 0.2, 180, 360) + [(0.5, 1)],
          [(0.5, 0.5)] + arc(0.75, 0.5, 0.25, 0.2, 180, 360) + [(1, 1)]],
    "w": [[(0, 0.3), (0.2, 1), (0.5, 0.5), (0.8, 1), (1, 0.3)]],
    "x": [[(0.1, 0.3), (0.9, 1)], [(0.9, 0.3), (0.1, 1)]],
    "k": [[(0, 0), (0, 1)], [(0.8, 0.4), (0, 0.75), (0.8, 1)]],
    "e": [[(0.05, 0.6), (0.95, 0.6)] + arc(0.5, 0.6, 0.45, 0.4, 0, -300)],
    "&": [[(1, 1)] + arc(0.4, 0.22, 0.18, 0.2, 45, -225) + [(0.75, 0.7)] + arc(0.4, 0.72, 0.3, 0.26, 0, 240)
          + [(1, 0.5)]],
    "%": [arc(0.2, 0.2, 0.15, 0.15, 0, 360), [(0.9, 0), (0.1, 1)], arc(0.8, 0.8, 0.15, 0.15, 0, 360)],
    "@": [arc(0.5, 0.5, 0.17, 0.2, 0, 360), [(0.67, 0.3), (0.67, 0.65)] + arc(0.5, 0.5, 0.45, 0.45, 40, 330)],
}

DIGIT_LIKE_LETTERS = {  # a reader could take these for digits: measured apart, not counted as non-digits
    "O": [arc(0.5, 0.5, 0.4, 0.5, 0, 360)],
    "I": [[(0.5, 0), (0.5, 1)]],
    "S": [arc(0.5, 0.25, 0.4, 0.25, -20, -270) + arc(0.5, 0.75, 0.4, 0.25, -90, 160)],
    "Z": [[(0, 0), (1, 0), (0, 1), (1, 1)]],
    "B": [[(0, 1), (0, 0)] + arc(0.35, 0.25, 0.5, 0.25, -90, 90) + arc(0.35, 0.75, 0.6, 0.25, -90, 90) + [(0, 1)]],
    "G": [arc(0.5, 0.5, 0.45, 0.5, -40, -360) + [(0.95, 0.5), (0.6, 0.5)]],
    "q": [arc(0.45, 0.3, 0.35, 0.3, 0, 360), [(0.8, 0.3), (0.8, 1)]],
    "L": [[(0, 0), (0, 1), (0.8, 1)]],
    "T": [[(0, 0), (1, 0)], [(0.5, 0), (0.5, 1)]],
    "J": [[(0.7, 0), (0.7, 0.75)] + arc(0.4, 0.75, 0.3, 0.25, 0, 180)],
    "C": [arc(0.5, 0.5, 0.45, 0.5, -45, -315)],
    "U": [[(0, 0)] + arc(0.5, 0.6, 0.5, 0.4, 180, 0) + [(1, 0)]],
    "P": [[(0, 1), (0, 0)] + arc(0.3, 0.25, 0.5, 0.25, -90, 90) + [(0, 0.5)]],
    "Y": [[(0, 0), (0.5, 0.5), (1, 0)], [(0.5, 0.5), (0.5, 1)]],
    "b": [[(0, 0), (0, 1)], arc(0.4, 0.7, 0.4, 0.3, 0, 360)],
    "d": [[(0.8, 0), (0.8, 1)], arc(0.4, 0.7, 0.4, 0.3, 0, 360)],
    "g": [arc(0.5, 0.3, 0.3, 0.3, 0, 360), [(0.8, 0.3), (0.8, 0.8)] + arc(0.5, 0.8, 0.3, 0.2, 0, 160)],
    "V": [[(0, 0), (0.5, 1), (1, 0)]],
    "y": [[(0, 0), (0.5, 0.6)], [(1, 0), (0.2, 1)]],
}

DIGITS = {  # digits written with the same pen: these should pass
    "0": [arc(0.5, 0.5, 0.35, 0.5, 0, 360)],
    "1": [[(0.35, 0.15), (0.55, 0), (0.55, 1)]],
    "1 plain": [[(0.5, 0), (0.45, 1)]],
    "2": [arc(0.5, 0.3, 0.4, 0.3, 200, 380) + [(0.05, 1), (0.95, 1)]],
    "3": [arc(0.5, 0.27, 0.38, 0.25, 200, 450) + arc(0.5, 0.73, 0.42, 0.27, 270, 520)],
    "4": [[(0.6, 0), (0.05, 0.65), (0.95, 0.65)], [(0.7, 0.3), (0.7, 1)]],
    "4 open": [[(0.15, 0), (0.1, 0.6), (0.9, 0.6)], [(0.75, 0.1), (0.7, 1)]],
    "5": [[(0.9, 0), (0.2, 0), (0.15, 0.45)] + arc(0.5, 0.7, 0.4, 0.3, 230, 500)],
    "6": [[(0.75, 0)] + arc(0.75, 0.6, 0.65, 0.6, 250, 180) + arc(0.5, 0.72, 0.38, 0.28, 180, 540)],
    "7": [[(0.05, 0), (0.95, 0), (0.4, 1)]],
    "8": [arc(0.5, 0.25, 0.32, 0.25, 90, 450) + arc(0.5, 0.75, 0.4, 0.25, -90, 270)],
    "9": [arc(0.5, 0.3, 0.38, 0.3, 0, 360), [(0.88, 0.3), (0.8, 1)]],
}


def _from(templates: dict):
    names = sorted(templates)
    return lambda rng: jitter(templates[names[rng.integers(len(names))]], rng)


KINDS = {
    "scribble": scribble,
    "dense fill": dense_fill,
    "blob": blob,
    "shape": _from(SHAPES),
    "letter or symbol": _from(LETTERS),
    "random strokes": random_strokes,
}


def non_digits(per_kind: int = 100, seed: int = 0) -> dict[str, np.ndarray]:
    """{kind: (per_kind, 28, 28)} preprocessed non-digit drawings, the same on every call."""
    rng = np.random.default_rng(seed)
    return {kind: np.stack([render(make(rng), rng) for _ in range(per_kind)]) for kind, make in KINDS.items()}


def drawn(templates: dict, per_template: int = 10, seed: int = 1,
          size: tuple[float, float] = (120, 250)) -> np.ndarray:
    """(len(templates) * per_template, 28, 28): each template drawn ``per_template`` times by a varying hand."""
    rng = np.random.default_rng(seed)
    return np.stack([render(jitter(strokes, rng), rng, size) for strokes in templates.values()
                     for _ in range(per_template)])
