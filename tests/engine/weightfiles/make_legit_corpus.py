"""Write tests/engine/weightfiles/legit/: sound weight files in every form DigitLab must keep reading, values known.

Run ``python tests/engine/weightfiles/make_legit_corpus.py`` to regenerate (deterministic; the test
checks the committed files are current). The pickles are written by numpy's own pickling (numpy 2
names ``numpy._core.*``) and renamed to numpy 1.x names (``numpy.core.*``) for every protocol 0-5;
protocol 5 keeps its array data in band (no out-of-band buffers). Every file holds the same small
784-4-10 network (or the tiny CNN below); the manifest records the architecture it must load as and
a checksum of the values, which must come back identical.
"""
from __future__ import annotations

import hashlib
import io
import json
import pickle
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from engine.weightfiles.save import rename_globals

HERE = Path(__file__).resolve().parent / "legit"
MANIFEST = "MANIFEST.json"
BOOK_MODULE = "digitlab_legit_corpus_book"  # the pickled objects' module: never importable when loading


def mlp_params(dtype=np.float32) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2024)
    return {"W1": (rng.standard_normal((784, 4)) * 0.05).astype(dtype), "b1": rng.standard_normal(4).astype(dtype),
            "W2": (rng.standard_normal((4, 10)) * 0.5).astype(dtype), "b2": rng.standard_normal(10).astype(dtype)}


def cnn_params() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {"W1": rng.standard_normal((2, 1, 5, 5)).astype(np.float32), "b1": rng.standard_normal(2).astype(np.float32),
            "W2": (rng.standard_normal((288, 10)) * 0.1).astype(np.float32), "b2": np.zeros(10, np.float32)}


TINY_CNN = {"input_shape": [1, 28, 28], "loss": "cross-entropy", "input_scale": 255.0, "layers": [
    {"type": "conv", "filters": 2, "channels": 1, "size": 5, "stride": 1, "pad": 0}, {"type": "relu"},
    {"type": "pool", "size": 2, "stride": 2, "pad": 0}, {"type": "affine", "in": 288, "out": 10}]}


def checksum(params: dict) -> str:
    """Names, shapes and exact values (as little-endian float64: float32 values convert exactly)."""
    digest = hashlib.sha256()
    for name in sorted(params):
        value = np.asarray(params[name])
        digest.update(f"{name}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value, dtype="<f8").tobytes())
    return digest.hexdigest()


def npy(arr: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, arr, allow_pickle=False)
    return out.getvalue()


def zipped(members: dict[str, bytes]) -> bytes:
    """An .npz with fixed timestamps (np.savez stamps the current time)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def book_network(params: dict, protocol: int) -> bytes:
    """A pickled TwoLayerNet like the book's ch05 one: params, an OrderedDict of Affine/Relu layers, a last layer."""
    module = type(sys)(BOOK_MODULE)
    classes = {name: type(name, (), {"__module__": BOOK_MODULE, "__qualname__": name})
               for name in ("TwoLayerNet", "Affine", "Relu", "SoftmaxWithLoss")}
    for name, cls in classes.items():
        setattr(module, name, cls)
    sys.modules[BOOK_MODULE] = module
    try:
        def make(name, **attrs):
            obj = classes[name]()
            obj.__dict__.update(attrs)
            return obj

        layers = OrderedDict([("Affine1", make("Affine", W=params["W1"], b=params["b1"], x=None, dW=None, db=None)),
                              ("Relu1", make("Relu", mask=None)),
                              ("Affine2", make("Affine", W=params["W2"], b=params["b2"], x=None, dW=None, db=None))])
        net = make("TwoLayerNet", params=params, layers=layers, lastLayer=make("SoftmaxWithLoss", loss=None, y=None))
        return pickle.dumps(net, protocol=protocol)
    finally:
        del sys.modules[BOOK_MODULE]


def corpus() -> dict[str, tuple[bytes, str, str, str]]:
    """file name -> (content, what it is, the architecture it loads as, checksum of its values)."""
    files: dict[str, tuple[bytes, str, str, str]] = {}
    mlp, mlp64 = mlp_params(), mlp_params(np.float64)
    arch = "784-4-10 MLP, relu"
    for p in range(6):
        numpy2 = pickle.dumps(mlp, protocol=p)
        files[f"numpy2-protocol{p}.pkl"] = (numpy2, f"a params dict pickled by numpy 2, protocol {p}", arch,
                                            checksum(mlp))
        files[f"numpy1-protocol{p}.pkl"] = (rename_globals(numpy2), f"the same with numpy 1.x names, protocol {p}",
                                            arch, checksum(mlp))
    odd = {"W1": np.asfortranarray(mlp64["W1"]), "b1": mlp64["b1"].astype(">f8"),
           "W2": np.asfortranarray(mlp64["W2"]).astype(">f8", order="F"), "b2": mlp64["b2"]}
    for p in (2, 4, 5):
        files[f"fortran-big-endian-protocol{p}.pkl"] = (
            pickle.dumps(odd, protocol=p), f"Fortran-order and big-endian float64 arrays, protocol {p}", arch,
            checksum(mlp64))
    files["fortran-big-endian.npz"] = (zipped({f"{k}.npy": npy(v) for k, v in odd.items()}),
                                       "Fortran-order and big-endian arrays in an .npz", arch, checksum(mlp64))
    files["ordered-dict.pkl"] = (pickle.dumps(OrderedDict(mlp), protocol=2), "an OrderedDict of params", arch,
                                 checksum(mlp))
    files["list-of-arrays.pkl"] = (pickle.dumps(list(mlp.values()), protocol=3), "[W1, b1, W2, b2]", arch,
                                   checksum(mlp))
    for p in (2, 4):
        files[f"book-two-layer-net-protocol{p}.pkl"] = (
            book_network(mlp64, p), f"a pickled TwoLayerNet object with Affine/Relu layers, protocol {p}",
            arch, checksum(mlp64))
    meta = {"format": "digitlab-weights", "format_version": 1, "digitlab_version": "0.1.0",
            "saved_at": "2026-01-01T00:00:00+00:00", "spec": TINY_CNN, "info": {"source": "legit corpus"},
            "training": {"epochs": 1, "config": {"lr": 0.1}}}
    cnn = cnn_params()
    files["digitlab-tiny-cnn.npz"] = (
        zipped({**{f"{k}.npy": npy(v) for k, v in cnn.items()}, "__digitlab__.npy": npy(np.array(json.dumps(meta)))}),
        "DigitLab's own .npz: a tiny CNN with its spec (pixels in [0, 255])", "conv → relu → pool → affine",
        checksum(cnn))
    return files


def write(folder: Path = HERE) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    manifest, written = {}, []
    for name, (data, what, architecture, values) in corpus().items():
        (folder / name).write_bytes(data)
        manifest[name] = {"what": what, "expect": "loads", "architecture": architecture, "sha256_values": values}
        written.append(folder / name)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return written


if __name__ == "__main__":
    for path in write():
        sys.stdout.write(f"wrote {path.name}\n")
