"""The loss landscape lab's words: the help lines under its views and what each surface shows (its tooltip).

The surface list shows short titles; each item's tooltip gives the whole name, the formula and what to look for.
"""
from __future__ import annotations

from engine.labs.landscape import Surface

MAP_HELP = "Dark is low. Paths cross the contour lines downhill; a path that overshoots zigzags across the valley."
VIEW_3D_HELP = "Drag to turn the surface, scroll to zoom. Height and colour are the value (dark is low), as on the map."
SURFACE_TOOLTIP = "The function the optimizers descend: a real neuron's loss, or a classic test surface"
# what each surface shows, for its tooltip in the list (the title there is short)
SURFACE_NOTES = {
    "neuron": "The loss of one sigmoid neuron y = σ(w·1 + b) learning the target 0.5, over its weight w and "
              "bias b: nearly flat far from the valley, where σ saturates and the gradient vanishes.",
    "bowl": "The surface of the book's optimizer comparison (chapter 6, ch06): 20 times steeper along y than "
            "along x, so SGD zigzags across the valley while Momentum, AdaGrad and Adam head for the minimum (0, 0).",
    "saddle": "Downhill along y, uphill along x: the gradient vanishes at (0, 0), which is no minimum, and a "
              "start near y = 0 stalls there before sliding off.",
    "rosenbrock": "A narrow curved valley with its minimum at (1, 1): the valley is quick to reach and slow to "
                  "follow, a classic test for optimizers.",
}


def surface_description(surface: Surface) -> str:
    """The surface's full name, its formula and what it shows (for tooltips)."""
    note = SURFACE_NOTES.get(surface.key, "")
    return f"{surface.title}: {surface.formula}." + (f" {note}" if note else "")
