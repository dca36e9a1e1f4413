"""Write tests/engine/weightfiles/hostile/: weight files that try to run code, exhaust memory, or are simply broken.

Run ``python tests/engine/weightfiles/make_hostile_corpus.py`` to regenerate (the output is
deterministic; test_weights.py checks the committed files are current).
``--verify-live`` additionally loads each code-running file with the real,
unsafe ``pickle`` in a subprocess and reports which payloads really run (they
only create marker files under /tmp/digitlab-hostile-marker-*).

Every payload that runs code only creates its marker file, so a test can
prove that loading the file through DigitLab ran nothing.
"""
from __future__ import annotations

import argparse
import builtins
import copyreg
import importlib
import io
import json
import pickle
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from engine.weightfiles.save import rename_globals

HERE = Path(__file__).resolve().parent / "hostile"
MARKER_PREFIX = "/tmp/digitlab-hostile-marker-"
MANIFEST = "MANIFEST.json"


class Call:
    """Pickles as ``func(*args)``: the REDUCE opcode that makes pickle.load call something."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __call__(self, *args):  # pickle only pickles callables as REDUCE targets
        raise RuntimeError("never called here")

    def __reduce__(self):
        return self.func, self.args


class ArrayState:
    """Pickles like a numpy array, but with whatever shape, dtype and data we say."""

    def __init__(self, shape, dtype, data: bytes) -> None:
        self.shape, self.dtype, self.data = shape, dtype, data

    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        return _reconstruct, (np.ndarray, (0,), b"b"), (1, self.shape, self.dtype, False, self.data)


def marker(name: str) -> str:
    return MARKER_PREFIX + name


def touch(name: str) -> str:
    return f"touch {marker(name)}"


def py_touch(name: str) -> str:
    return f"open({marker(name)!r}, 'w').close()"


def dumps(obj, protocol: int = 2) -> bytes:
    return pickle.dumps(obj, protocol=protocol)


def os_system(name: str, protocol: int) -> bytes:
    """``os.system('touch …')``: os.system pickles as posix.system on Linux, so rename the module."""
    import os

    return rename_globals(dumps(Call(os.system, touch(name)), protocol), {"posix": "os"})


def popen_globals_chain(name: str):
    """getattr(getattr(Popen.__init__, '__globals__').get('os'), 'system')('touch …'), built from getattr only."""
    init = Call(getattr, subprocess.Popen, "__init__")
    module_globals = Call(getattr, init, "__globals__")
    get = Call(getattr, module_globals, "get")
    os_module = Call(get, "os")
    system = Call(getattr, os_module, "system")
    return Call(system, touch(name))


def import_os_system(name: str) -> bytes:
    """getattr(__import__('os'), 'system')('touch …'), written opcode by opcode (pytest replaces __import__)."""
    command = touch(name).encode()
    return (b"\x80\x02c__builtin__\ngetattr\nc__builtin__\n__import__\nX\x02\x00\x00\x00os\x85R"
            b"X\x06\x00\x00\x00system\x86RX" + len(command).to_bytes(4, "little") + command + b"\x85R.")


def npz_with_pickle() -> bytes:
    """An .npz whose W1 entry is an object array: np.load(allow_pickle=True) would run os.system."""
    import os

    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = Call(os.system, touch("npz-object-array")), 1
    npy = io.BytesIO()
    np.lib.format.write_array(npy, arr, allow_pickle=True)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr(zipfile.ZipInfo("W1.npy", date_time=(1980, 1, 1, 0, 0, 0)), npy.getvalue())
    return out.getvalue()


def npz_declaring_too_much() -> bytes:
    """An .npz entry whose header declares a 4 TB array but holds 8 bytes (np.load would allocate first)."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (1_000_000, 1_000_000)}
    npy = io.BytesIO()
    np.lib.format.write_array_header_1_0(npy, header)
    npy.write(b"\0" * 8)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr(zipfile.ZipInfo("W1.npy", date_time=(1980, 1, 1, 0, 0, 0)), npy.getvalue())
    return out.getvalue()


def weights(sizes, dtype=np.float32) -> dict:
    rng = np.random.default_rng(7)
    params = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"W{i}"] = rng.standard_normal((a, b)).astype(dtype)
        params[f"b{i}"] = np.zeros(b, dtype)
    return params


def billion_laughs(levels: int = 40, width: int = 10) -> bytes:
    """Each list holds ``width`` references to the previous one: 10**40 elements if expanded naively."""
    out = bytearray(b"\x80\x02]q\x000")  # EMPTY_LIST, BINPUT 0, POP: the list stays in the memo
    for level in range(1, levels + 1):
        out += b"(" + (b"h" + bytes([level - 1])) * width + b"l" + b"q" + bytes([level])  # MARK, BINGETs, LIST, BINPUT
        if level < levels:
            out += b"0"
    return bytes(out + b".")


def corpus() -> dict[str, tuple[bytes, str, str]]:
    """file name -> (content, what it tries, a fragment the refusal message must contain)."""
    import os

    files: dict[str, tuple[bytes, str, str]] = {}

    def add(name: str, data: bytes, what: str, refusal: str) -> None:
        files[name] = (data, what, refusal)

    for p in range(6):
        add(f"os-system-protocol{p}.pkl", os_system(f"os-system-p{p}", p),
            f"os.system('touch …') via REDUCE, pickle protocol {p}", "tries to call os.system")
    add("posix-system.pkl", dumps(Call(os.system, touch("posix-system"))), "posix.system('touch …')",
        "tries to call posix.system")
    add("subprocess-popen.pkl", dumps(Call(subprocess.Popen, ["touch", marker("popen")]), 4),
        "subprocess.Popen(['touch', …])", "tries to call subprocess.Popen")
    add("builtins-eval.pkl", dumps(Call(builtins.eval, py_touch("eval")), 3), "eval(\"open(…, 'w')\")",
        "tries to call builtins.eval")
    add("builtins-exec.pkl", dumps(Call(builtins.exec, py_touch("exec")), 5), "exec(\"open(…, 'w')\")",
        "tries to call builtins.exec")
    add("builtins-import.pkl", import_os_system("import"),
        "__import__('os').system('touch …')", "tries to call builtins.__import__")
    add("getattr-chain.pkl", dumps(popen_globals_chain("getattr-chain"), 4),
        "getattr(getattr(subprocess.Popen.__init__, '__globals__').get('os'), 'system')('touch …')",
        "tries to call builtins.getattr")
    add("importlib.pkl",
        dumps(Call(Call(getattr, Call(importlib.import_module, "os"), "system"), touch("importlib")), 4),
        "importlib.import_module('os').system('touch …')", "tries to call importlib.import_module")
    add("copyreg-reconstructor-popen.pkl",
        dumps(Call(copyreg._reconstructor, subprocess.Popen, subprocess.Popen, ["touch", marker("reconstructor")]), 0),
        "copyreg._reconstructor(Popen, Popen, [...]) runs Popen.__init__", "with base subprocess.Popen")
    add("copyreg-reconstructor-real-class.pkl", dumps(Call(copyreg._reconstructor, OrderedDict, object, None), 1),
        "copyreg._reconstructor on a real (imported) class", "with class collections.OrderedDict")
    add("numpy-load.pkl", dumps(Call(np.load, marker("numpy-load") + ".npy", None, True)),
        "numpy.load(path, allow_pickle=True) of another file", "tries to call numpy.load")
    add("numpy-frombuffer.pkl", dumps(Call(np.frombuffer, b"\0" * 8, "f8")), "numpy.frombuffer",
        "tries to call numpy.frombuffer")
    obj_array = np.empty(2, dtype=object)
    obj_array[0], obj_array[1] = Call(os.system, touch("object-array")), 1
    add("object-array.pkl", dumps({"W1": obj_array}), "a numpy array of dtype object holding os.system(…)",
        "dtype object")
    add("npz-with-pickle.npz", npz_with_pickle(), "an .npz whose array is pickled objects", "object array")
    add("npz-declares-too-much.npz", npz_declaring_too_much(), "an .npz entry declaring 4 TB in 8 bytes",
        "declares shape")
    add("codecs-decode-zlib.pkl", dumps(Call(__import__("_codecs").decode, b"x\x9c\x03\x00", "zlib_codec")),
        "_codecs.decode(…, 'zlib') (a decompression bomb)", "tries to call _codecs.decode")
    add("bytearray-bomb.pkl", dumps(Call(bytearray, 10**12)), "bytearray(10**12): a terabyte of memory",
        "builtins.bytearray")
    add("array-larger-than-file.pkl", dumps({"W1": ArrayState((100_000, 100_000), np.dtype("f4"), b"\0" * 4)}),
        "an array that declares 40 GB but holds 4 bytes", "declares shape")
    add("reconstruct-other-class.pkl",
        dumps(Call(__import__("numpy._core.multiarray", fromlist=["_reconstruct"])._reconstruct,
                   subprocess.Popen, (0,), b"b")),
        "numpy's _reconstruct with subprocess.Popen as the class", "with class subprocess.Popen")
    add("modify-numpy-dtype.pkl", b"\x80\x02cnumpy\ndtype\nN}q\x00X\x03\x00\x00\x00abcq\x01K\x01s\x86b.",
        "BUILD with slot state on numpy.dtype (would change a shared object)", "tries to modify numpy.dtype")
    add("persistent-id.pkl", b"\x80\x02X\x03\x00\x00\x00abcQ.", "a persistent id (an external object)",
        "persistent id")
    add("memo-bomb.pkl", b"\x80\x02]r\xff\xff\xff\x7f.", "LONG_BINPUT 2**31-1: 16 GB of memo slots", "memo index")
    add("huge-declared-bytes.pkl", b"\x80\x04\x8e" + (1 << 40).to_bytes(8, "little") + b"xx.",
        "BINBYTES8 declaring a terabyte", "not a valid pickle")
    depth = 100_000
    add("deep-nesting.pkl", b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b".", f"{depth:,} nested lists",
        "nested")
    add("billion-laughs.pkl", billion_laughs(), "lists of references to lists, 10**40 elements if expanded",
        "no weight arrays")
    add("truncated.pkl", dumps(weights([784, 8, 10]), 4)[:10_000], "a weight pickle cut short",
        "truncated")
    add("empty.pkl", b"", "an empty file", "empty")
    add("random-bytes.pkl", np.random.default_rng(12345).bytes(4096), "4 KB of random bytes", "pickle")
    nan = weights([784, 8, 10])
    nan["W2"][3, 4] = np.nan
    add("nan-weights.pkl", dumps(nan, 4), "a W2 holding NaN", "NaN")
    add("shapes-do-not-chain.pkl", dumps({**weights([784, 8, 10]), "W2": np.zeros((9, 10), np.float32)}, 4),
        "W1 gives 8 outputs, W2 takes 9", "do not chain")
    add("wrong-input-size.pkl", dumps(weights([100, 8, 10]), 4), "W1 takes 100 inputs", "784 pixels")
    add("wrong-output-size.pkl", dumps(weights([784, 8, 9]), 4), "9 output classes", "10 digit classes")
    missing = weights([784, 8, 10])
    del missing["b2"]
    add("missing-bias.pkl", dumps(missing, 4), "W2 without b2", "no matching b2")
    add("string-weights.pkl", dumps({"W1": np.array(["a", "b"]), "b1": np.zeros(2)}, 4), "W1 of strings",
        "only numeric arrays")
    add("not-weights.pkl", dumps({"hello": "world", "n": [1, 2, 3]}, 4), "a pickle of something else",
        "no weight arrays")
    return files


def write(folder: Path = HERE) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {}
    written = []
    for name, (data, what, refusal) in corpus().items():
        (folder / name).write_bytes(data)
        manifest[name] = {"what": what, "refusal": refusal}
        written.append(folder / name)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return written


def verify_live(folder: Path = HERE) -> dict[str, bool]:
    """Load each file with the real pickle in a subprocess; True where a marker file appeared (the payload ran)."""
    results = {}
    for path in sorted(folder.glob("*.pkl")):
        before = set(Path("/tmp").glob("digitlab-hostile-marker-*"))
        subprocess.run([sys.executable, "-c", "import pickle, sys; pickle.loads(open(sys.argv[1], 'rb').read())",
                        str(path)], capture_output=True, timeout=60)
        created = set(Path("/tmp").glob("digitlab-hostile-marker-*")) - before
        results[path.name] = bool(created)
        for m in created:
            m.unlink()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verify-live", action="store_true", help="run the payloads with the real pickle")
    args = parser.parse_args()
    for path in write():
        sys.stdout.write(f"wrote {path.name}\n")
    if args.verify_live:
        for name, ran in verify_live().items():
            sys.stdout.write(f"{'RUNS ' if ran else 'inert'}  {name}\n")


if __name__ == "__main__":
    main()
