"""DigitLab's training engine: pure NumPy, no Qt.

Everything the GUI does can be done from Python with this package:
build a network, train it with a controllable loop, check gradients,
load datasets and weight files.
"""
