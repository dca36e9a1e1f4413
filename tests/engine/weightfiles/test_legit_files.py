"""Sound weight files keep loading with identical values: every pickle protocol, numpy 1.x and 2.x names,
Fortran-order and big-endian arrays, the book's pickled TwoLayerNet, DigitLab's own .npz (the legit/ corpus)."""
from __future__ import annotations

import importlib.util
import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

from engine.weightfiles.recognise import inspect_weights, load_weights
from engine.weightfiles.safe_pickle import safe_load

HERE = Path(__file__).resolve().parent
LEGIT = HERE / "legit"
MANIFEST = json.loads((LEGIT / "MANIFEST.json").read_text(encoding="utf-8"))


def generator():
    spec = importlib.util.spec_from_file_location("make_legit_corpus", HERE / "make_legit_corpus.py")
    gen = importlib.util.module_from_spec(spec)  # a script beside this file, not a package
    spec.loader.exec_module(gen)
    return gen


GEN = generator()


def test_legit_corpus_is_complete_and_current(tmp_path):
    files = sorted(p.name for p in LEGIT.iterdir() if p.name != "MANIFEST.json")
    assert files == sorted(MANIFEST)
    assert {f"numpy{v}-protocol{p}.pkl" for v in (1, 2) for p in range(6)} <= set(files)
    GEN.write(tmp_path)
    for name in files:
        assert (tmp_path / name).read_bytes() == (LEGIT / name).read_bytes(), f"{name} is stale: regenerate"


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_legit_file_loads_with_identical_values(name):
    entry = MANIFEST[name]
    says_itself = name.startswith(("book-", "digitlab-"))  # the activation is in the file (class names or spec)
    loaded = load_weights(LEGIT / name, activation=None if says_itself else "relu",
                          input_scale=None if name.startswith("digitlab-") else 1.0)
    assert loaded.architecture.startswith(entry["architecture"])
    assert GEN.checksum(loaded.network.params) == entry["sha256_values"]
    assert all(v.dtype.isnative and v.flags.writeable for v in loaded.network.params.values())
    if says_itself:
        assert loaded.activation == "relu" and loaded.activation_source == "file"
    probe = (np.random.default_rng(0).random((20, 784)), np.arange(20) % 10)  # a quick guess is enough here
    info = inspect_weights(LEGIT / name, probe=probe)
    assert info["recognised"] and info["architecture"].startswith(entry["architecture"].split(",")[0])


@pytest.mark.parametrize("name", sorted(n for n in MANIFEST if n.endswith(".pkl") and not n.startswith("book-")))
def test_safe_load_gives_what_pickle_gives(name):
    data = (LEGIT / name).read_bytes()
    with warnings.catch_warnings():  # numpy 2 warns when a pickle names numpy.core.numeric (numpy 1.x, protocol 5)
        warnings.simplefilter("ignore", DeprecationWarning)
        theirs = pickle.loads(data)  # these files are ours: plain pickle is safe on them
    ours = safe_load(data)
    assert type(ours) is type(theirs)
    pairs = zip(ours, theirs) if isinstance(ours, list) else ((ours[k], theirs[k]) for k in theirs)
    for a, b in pairs:
        assert a.shape == b.shape and a.dtype == b.dtype.newbyteorder("=")
        np.testing.assert_array_equal(a, b)


def test_digitlab_npz_metadata_comes_back():
    loaded = load_weights(LEGIT / "digitlab-tiny-cnn.npz")
    assert loaded.input_scale == 255.0 and loaded.scale_source == "file"
    assert loaded.metadata["training"] == {"epochs": 1, "config": {"lr": 0.1}}
    assert loaded.network.predict(np.zeros(784)).shape == (10,)
