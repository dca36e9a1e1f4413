"""Data: the in-memory dataset, named datasets and downloads, IDX files, images and MNIST-style preprocessing.

Imports neither engine.nn nor engine.train (import-linter checks it).
"""
