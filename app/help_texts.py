"""The texts of Help ▸ Guide and Help ▸ About, as plain text (the main window shows them; no wiring here).

``guide_text()`` says what each page shows and how to read it, lists the keyboard shortcuts (the
same keys ``app.run_controls``, ``app.draw_panel`` and ``app.main_window`` give their actions; a test
checks every key set in ``app/`` is listed here) and points to the README's sections by their
headings. ``about_text()`` names the versions a bug report needs.
"""
from __future__ import annotations

import platform
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from app.cli_io import digitlab_version

TOP_PAGES = ("Train", "Evaluate", "Compare", "Models", "Labs")
LABS = ("Loss functions", "Gradient descent", "Gradients", "Loss landscape")

# (keys, what they do) as Qt shows them; the standard keys (QKeySequence.Open, .Save, .Quit) as on Linux desktops
RUN_SHORTCUTS = (
    ("F5", "Start training with the settings on the left"),
    ("F6", "Pause after the current mini-batch"),
    ("F8", "Resume a paused run"),
    ("F10", "Step: train exactly one mini-batch, then pause"),
    ("Shift+F10", "Step epoch: train to the end of the current epoch, then pause"),
    ("Shift+F5", "Stop: the network keeps what it has learned"),
    ("Ctrl+Shift+R", "Reset: a new, untrained network from the settings"),
)
FILE_SHORTCUTS = (
    ("Ctrl+O", "Open weights… (DigitLab's .npz, the book's or Nielsen's pickle, PyTorch .pt, .safetensors)"),
    ("Ctrl+I", "Open image…: a picture of a digit onto the canvas"),
    ("Ctrl+S", "Save weights… (.npz with the settings, a book-compatible .pkl, PyTorch .pt or .safetensors)"),
    ("Ctrl+L", "Clear the drawing (a right-click on the canvas does too)"),
    ("Ctrl+Q", "Quit (the system's own key for it: Ctrl+Q on Linux desktops, ⌘Q on macOS, Alt+F4 on Windows)"),
    ("F1", "Help ▸ Guide: this text, in a window beside the main one"),
)
# README.md headings the guide points to (a test checks each is still a heading there)
README_SECTIONS = (
    "The window", "Learning labs", "Evaluation, comparisons, many models", "Command line", "Weight files",
    "Install", "System libraries", "Offline data",
)

_PAGES = {
    "Train": (
        "Choose the data, the network and how to train it in the settings column on the left, then Start (F5). "
        "The Pace control sets how fast it goes: at 30 steps a second or slower every mini-batch reaches the "
        "plot, the weights and the prediction; Step (F10) trains exactly one.",
        "Loss plot: the thin line is each mini-batch's loss, the bold one their smoothed average (the legend "
        "names its window); ○ and □ mark each epoch's loss and accuracy on the training and test digits. A "
        "falling loss is learning; a test loss far above the training loss is overfitting.",
        "Weights: one tile per first-layer unit, its 784 input weights as a 28×28 picture (for a CNN, one tile "
        "per filter of the first convolution, its small window of weights), by default the change since the "
        "run started: red where ink makes the unit fire, blue where ink holds it back.",
    ),
    "Evaluate": (
        "Test accuracy and loss, the accuracy of each digit and the 10×10 confusion matrix (rows: the true "
        "digit, columns: what the network said). Click a cell to see those test images, the most confident "
        "first; click an image to put it on the canvas. It is redone after every epoch while training.",
    ),
    "Compare": (
        "Every run of this session, and runs imported from files. Tick runs to overlay their loss and "
        "accuracy curves; select one to focus it (bold, the others dimmed, the axes fitted to it). Race "
        "trains several optimizers or learning rates from the same weights on the same batches, side by "
        "side. Export saves exactly the selected runs: JSON and CSV per run and a PNG of their curves.",
    ),
    "Models": (
        "Open several weight files: the same drawing goes to every model, each with its ten probabilities, "
        "so you see where, say, the book's network and your own disagree.",
    ),
    "Labs": (
        "Small experiments from the book, each opening on the book's own example; none of them trains the "
        "network. The Labs page has its own tabs:",
    ),
    "Loss functions": (
        "Sum of squares and cross-entropy for one prediction and its correct label: the book's two examples, "
        "a vector you type, or the canvas's live prediction. A second plot shows why accuracy cannot be the "
        "loss: a step has no slope to follow.",
    ),
    "Gradient descent": (
        "Fit a line to a few points one step at a time: the points and the line on the left, the loss over "
        "the slope on the right with each step and the tangent that sets it. Try the three marked learning "
        "rates (too small, good, too large); click to add a point, drag to move one, right-click to remove one.",
    ),
    "Gradients": (
        "Backprop's gradients checked against numerical differentiation on three images: the largest "
        "relative error per parameter and how much faster backprop is. Beside it, central against forward "
        "differences for the book's 0.01x² + 0.1x.",
    ),
    "Loss landscape": (
        "A loss surface as a heat map with contour lines, and the paths SGD, Momentum, AdaGrad, RMSprop and "
        "Adam take over it from the same start. Click to start somewhere else; the slider scales every "
        "learning rate; a 3-D view shows where OpenGL works.",
    ),
}
DRAWING = (
    "Draw a digit with the left mouse button in the drawing column (beside the pages that read it); the small "
    "image shows it as the network sees it, 28×28 and centred like MNIST, and the ten bars follow every "
    "stroke, also while training. A drawing that does not look like a digit is flagged instead of given a "
    "confident answer. Drop a weight file on the window to open it, a picture of a digit (PNG, JPEG, …) on the "
    "canvas to classify it."
)


def _paragraphs(texts: Sequence[str], indent: str = "  ") -> list[str]:
    return [indent + text for text in texts]


def guide_text(top_pages: Sequence[str] = TOP_PAGES) -> str:
    """What each page shows and how to read it, the keyboard shortcuts, and where the README says more."""
    out = ["DigitLab guide", "",
           "A NumPy neural network learns to read handwritten digits while you watch. The pages, in the order a "
           "learner uses them (Ctrl+1 to Ctrl+{n} switch between them; the View menu lists the labs too):"
           .format(n=len(top_pages)), ""]
    for i, page in enumerate(top_pages):
        out.append(f"{page} (Ctrl+{i + 1})")
        out += _paragraphs(_PAGES.get(page, ()))
        if page == "Labs":
            for lab in LABS:
                out.append(f"  {lab}")
                out += _paragraphs(_PAGES[lab], "    ")
        out.append("")
    out += ["Drawing", *_paragraphs([DRAWING]), "",
            "Keyboard shortcuts", "  Training:"]
    out += [f"    {keys:<13} {what}" for keys, what in RUN_SHORTCUTS]
    out.append("  Files and the canvas:")
    out += [f"    {keys:<13} {what}" for keys, what in FILE_SHORTCUTS]
    out += [f"    {'Ctrl+1…' + str(len(top_pages)):<13} the pages: {', '.join(top_pages)}", "",
            "Hover over any control or plot for a one-line explanation; the status bar at the bottom says what "
            "is happening.", "",
            "More in README.md, the project's manual, under these headings: "
            + "; ".join(f"\"{h}\"" for h in README_SECTIONS) + ".",
            "The same work from a terminal: digitlab --help."]
    return "\n".join(out)


def _version_of(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"


def about_text() -> str:
    """DigitLab's version and the versions of what it runs on (Python, NumPy, PySide6/Qt, pyqtgraph)."""
    import numpy
    import pyqtgraph
    import PySide6
    from PySide6.QtCore import qVersion

    return "\n".join([
        f"DigitLab {digitlab_version()}",
        "Watch a neural network learn to read handwritten digits, and poke at it.",
        "",
        f"Python {platform.python_version()} ({platform.python_implementation()}, {sys.platform})",
        f"NumPy {numpy.__version__}",
        f"PySide6 {PySide6.__version__}, Qt {qVersion()}",
        f"pyqtgraph {pyqtgraph.__version__}",
        f"PyOpenGL {_version_of('PyOpenGL')} (the loss landscape's 3-D view)",
        "",
        "DigitLab is under the MIT licence. The offline MNIST sample it ships is from the MNIST database by "
        "Yann LeCun, Corinna Cortes and Christopher J. C. Burges, under CC BY-SA 3.0 "
        "(engine/data/sample/LICENSE).",
    ])
