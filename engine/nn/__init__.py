"""The network core: numerically stable functions, layers, convolution, initialisation, networks, optimizers, models.

Imports no other engine package (import-linter checks it).
"""
