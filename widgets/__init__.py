"""Reusable Qt/pyqtgraph views; they take and emit plain values and NumPy arrays, never train."""
