"""DigitLab's engine: pure NumPy, no Qt. Everything the window does can be done from Python with it.

Grouped by concern, each subpackage importing only what sits below it (import-linter checks this):

- ``engine.nn``          layers, convolution, initialisation, networks, optimizers, the book's models
- ``engine.data``        the in-memory dataset, named datasets and downloads, IDX files, images, preprocessing
- ``engine.train``       the training stepper and loop, run configurations, races, saved runs, evaluation,
                         gradient checks
- ``engine.weightfiles`` reading weight files safely, recognising their network, saving
- ``engine.labs``        the plain maths behind the learning labs

and three shared modules: ``errors`` (DigitLabError and its kinds), ``util`` (atomic writes, JSON-able
values, cancel checks) and ``registry`` (every name a person chooses from, with its label).
"""
