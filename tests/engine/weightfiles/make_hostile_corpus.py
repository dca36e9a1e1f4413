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
import struct
import subprocess
import sys
import zipfile
import zlib
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



# ----- issue 11: crashes, memory and time bombs, tracebacks (opcodes written by hand where pickle would not)
def text(s: str) -> bytes:
    """BINUNICODE: a str constant."""
    body = s.encode("utf-8", "surrogatepass")
    return b"X" + len(body).to_bytes(4, "little") + body


def long1(v: int) -> bytes:
    """LONG1: an int of up to 255 bytes."""
    body = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(body)]) + body


def deep_tuple(depth: int) -> bytes:
    """EMPTY_TUPLE then TUPLE1 ``depth`` times: hashing it recurses in C once per level."""
    return b")" + b"\x85" * depth


def shared_state(keys: int, objects: int, slots: bool) -> bytes:
    """``objects`` unknown-class objects sharing one state dict of ``keys`` entries (as ``(None, d)`` slots state)."""
    state = b"}q\x00(" + b"".join(text(f"k{i}") + b"K\x01" for i in range(keys)) + b"u"
    if slots:
        state = b"N" + state + b"\x86q\x00"
    return b"\x80\x02(cfoo\nBar\n)\x81" + state + b"b" + b"cfoo\nBar\n)\x81h\x00b" * objects + b"l."


def copies(arg: bytes, func: bytes, extra: bytes, times: int) -> bytes:
    """``[func(arg, *extra)] * times`` with ``arg`` memoised once: a constructor copying it ``times`` times."""
    return b"\x80\x02(" + arg + b"q\x00" + func + b"q\x01" + (b"h\x01(h\x00" + extra + b"tR") * times + b"l."


def stale_depth_lists(levels: int) -> bytes:
    """Lists created first and nested afterwards, outermost first: a stack-shape scan cannot see their depth."""
    out = bytearray(b"\x80\x02")
    for i in range(levels):
        out += b"]r" + i.to_bytes(4, "little") + b"0"  # EMPTY_LIST, LONG_BINPUT i, POP
    for i in range(levels - 1):
        out += b"j" + i.to_bytes(4, "little") + b"j" + (i + 1).to_bytes(4, "little") + b"a0"  # GET i, GET i+1, APPEND
    return bytes(out + b"j\x00\x00\x00\x00.")


def array_with_shape(shape_ops: bytes) -> bytes:
    """A numpy array pickle (protocol 2) whose shape tuple is ``shape_ops``."""
    return (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R(K\x01" + shape_ops
            + b"cnumpy\ndtype\nX\x02\x00\x00\x00f8\x89\x88\x87R(K\x03X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xff"
            b"J\xff\xff\xff\xffK\x00tb\x89C\x08" + b"\0" * 8 + b"tb.")


def npy(arr: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, arr, allow_pickle=False)
    return out.getvalue()


def zipped(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=method)
    return out.getvalue()


TINY_CNN = {"input_shape": [1, 28, 28], "loss": "cross-entropy", "input_scale": 1.0, "layers": [
    {"type": "conv", "filters": 2, "channels": 1, "size": 5, "stride": 1, "pad": 0}, {"type": "relu"},
    {"type": "pool", "size": 2, "stride": 2, "pad": 0}, {"type": "affine", "in": 288, "out": 10}]}


def digitlab_npz(meta_json: str, params: dict | None = None) -> bytes:
    """A DigitLab-style .npz of a tiny CNN (13 KB) whose metadata is ``meta_json``, written verbatim."""
    rng = np.random.default_rng(11)
    params = params or {"W1": rng.standard_normal((2, 1, 5, 5)).astype(np.float32), "b1": np.zeros(2, np.float32),
                        "W2": rng.standard_normal((288, 10)).astype(np.float32), "b2": np.zeros(10, np.float32)}
    members = {f"{k}.npy": npy(v) for k, v in params.items()}
    members["__digitlab__.npy"] = npy(np.array(meta_json))
    return zipped(members)


def tiny_cnn_meta(**changes) -> str:
    """TINY_CNN's metadata with ``changes`` ({layer index: {key: value}} or "spec key": value) applied."""
    spec = json.loads(json.dumps(TINY_CNN))
    for key, value in changes.items():
        if key.startswith("layer"):
            spec["layers"][int(key[5:])].update(value)
        else:
            spec[key] = value
    return json.dumps({"format": "digitlab-weights", "format_version": 1, "spec": spec})


def zip_directory(entries: int, cd_size: int | None = None, zip64_entries: int | None = None) -> bytes:
    """A zip whose end record claims ``entries`` entries (and directory size), optionally in a zip64 record."""
    data = zipped({"W1.npy": npy(np.zeros(1, np.float32))})
    end = data.rindex(b"PK\x05\x06")
    cd_start = data.index(b"PK\x01\x02")
    size = cd_size if cd_size is not None else end - cd_start
    if zip64_entries is None:
        return data[:end] + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, entries, entries, size, cd_start, 0)
    record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, zip64_entries, zip64_entries, size, cd_start)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, end, 1)
    return (data[:end] + record + locator
            + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))


def many_zip_records(n: int) -> bytes:
    """A real zip directory of ``n`` records (all naming one 4-byte entry): zipfile would list every one."""
    data = npy(np.zeros(1, np.float32))
    crc, name = zlib.crc32(data), b"W1.npy"
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0x21, crc, len(data), len(data), len(name), 0)
    record = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21, crc, len(data), len(data), len(name),
                         0, 0, 0, 0, 0, 0) + name
    cd = record * n
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, min(n, 0xFFFF), min(n, 0xFFFF), len(cd),
                      len(local) + len(name) + len(data), 0)
    return local + name + data + cd + end


def inflating_npz(nbytes: int) -> bytes:
    """An .npz whose one entry, a float32 array of zeros, inflates to ``nbytes`` (a multiple of 4 MiB): ~1000:1.

    The deflate stream is one fully flushed 4 MiB block of zeros repeated (each is independent after a
    full flush), so a 1 GiB bomb is built in a fraction of a second instead of compressing 1 GiB.
    """
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (nbytes // 4,)})
    head, zeros = header.getvalue(), bytes(1 << 22)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = deflate.compress(head) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    count = nbytes // len(zeros)
    data = first + block * count + deflate.flush()
    crc = zlib.crc32(head)
    for _ in range(count):
        crc = zlib.crc32(zeros, crc)
    size, name = len(head) + count * len(zeros), b"W1.npy"
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(data), size, len(name), 0) + name
    record = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, len(data), size, len(name),
                         0, 0, 0, 0, 0, 0) + name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(record), len(local) + len(data), 0)
    return local + data + record + end


def issue11_cases(add) -> None:
    """Crashes, memory and time bombs and tracebacks found by attacking the loader (issue 11)."""
    npz_ok = '{"format": "digitlab-weights", "spec": '
    add("tuple-key-200k-deep.pkl", b"\x80\x02}" + deep_tuple(200_000) + b"K\x01s.",
        "a tuple nested 200,000 deep as a dict key: hashing it recursed in C until SIGSEGV", "nested more than",
        isolate=True)
    add("tuple-in-set-5000-deep.pkl", b"\x80\x04\x8f(" + deep_tuple(5000) + b"\x90.",
        "a tuple nested 5,000 deep as a set element", "nested more than")
    add("tuple-in-frozenset-5000-deep.pkl", b"\x80\x04(" + deep_tuple(5000) + b"\x91.",
        "a tuple nested 5,000 deep in a frozenset", "nested more than")
    add("tuple-value-5000-deep.pkl", b"\x80\x02}" + text("W1") + deep_tuple(5000) + b"s.",
        "a tuple nested 5,000 deep as a value (a RecursionError traceback)", "nested more than")
    add("lists-nested-after-creation.pkl", stale_depth_lists(3000),
        "3,000 lists created first and nested afterwards, outermost first", "nested more than")
    add("shared-state-objects.pkl", shared_state(2000, 8000, slots=False),
        "8,000 unknown-class objects sharing one 2,000-entry state dict (the loader's walk was quadratic)",
        "no weight arrays", isolate=True)
    add("shared-slots-state-objects.pkl", shared_state(2000, 8000, slots=True),
        "8,000 objects sharing one (None, dict) state: the walk merged a copy per object (114 KB -> 2 GB)",
        "no weight arrays", isolate=True)
    add("ordered-dict-build-values.pkl",
        b"\x80\x02ccollections\nOrderedDict\n)R}(" + text("values") + b"K\x01" + text("get") + b"K\x02ub.",
        "an OrderedDict whose BUILD state writes values/get into its __dict__", "sets attributes on a collections")
    add("ordered-dict-build-slots.pkl",
        b"\x80\x02ccollections\nOrderedDict\n)RN}" + text("keys") + b"K\x01s\x86b.",
        "an OrderedDict whose BUILD slot state sets keys", "sets attributes on a collections")
    add("dict-build.pkl", b"\x80\x02c__builtin__\ndict\n)R}" + text("get") + b"K\x01sb.",
        "BUILD state on a dict made by builtins.dict()", "sets attributes on a dict")
    add("empty-list-build.pkl", b"\x80\x02]}" + text("append") + b"K\x01sb.", "BUILD state on a plain list",
        "sets attributes on a plain list")
    add("set-build.pkl", b"\x80\x04\x8f}" + text("add") + b"K\x01sb.", "BUILD state on a plain set",
        "sets attributes on a plain set")
    add("class-build.pkl", b"\x80\x02ccollections\nOrderedDict\n}" + text("values") + b"K\x01sb.",
        "BUILD state on the OrderedDict class itself", "tries to modify collections.OrderedDict")
    add("bytes-keys.pkl", dumps({b"W1": np.zeros((784, 2), np.float32), b"b1": np.zeros(2, np.float32)}, 4),
        "weights named by bytes (a traceback in inspect)", "names must be strings")
    add("tuple-keys.pkl", dumps({("W", 1): np.zeros((784, 2), np.float32), "b1": np.zeros(2, np.float32)}, 4),
        "a weight named by a tuple (a traceback in inspect)", "names must be strings")
    add("huge-int-key.pkl", b"\x80\x02}\x8b" + (30_000).to_bytes(4, "little") + b"\x01" * 30_000
        + dumps(np.zeros((784, 2), np.float32))[2:-1] + b"s.",
        "an array named by a 240,000-bit int (str() of it raises)", "named an integer of")
    add("long-key.pkl", dumps({"W" * 100_000: np.zeros((784, 2), np.float32), "b1": np.zeros(2, np.float32)}, 4),
        "a weight named by 100,000 characters", "more characters")
    add("hash-flood-int-keys.pkl",
        b"\x80\x02}(" + b"".join(long1(k * ((1 << 61) - 1)) + b"N" for k in range(1, 1000)) + b"u.",
        "1,000 different int keys of one hash value (a quadratic dict: minutes at 60,000)", "hash-flooding",
        isolate=True)
    add("list-of-tuple-copied.pkl", copies(b"(" + b"K\x01" * 50_000 + b"t", b"c__builtin__\nlist\n", b"", 1000),
        "list(t) a thousand times of one memoised 50,000-item tuple", "copy more data than the file holds",
        isolate=True)
    add("encode-copied.pkl", copies(text("a" * 100_000), b"c_codecs\nencode\n", text("latin1"), 1000),
        "_codecs.encode(s) a thousand times of one memoised 100 KB string", "copy more data than the file holds",
        isolate=True)
    add("list-of-bytes.pkl", b"\x80\x03c__builtin__\nlist\nB" + (100_000).to_bytes(4, "little") + b"\0" * 100_000
        + b"\x85R.", "builtins.list(bytes): 8 bytes of pointers per byte of file", "builtins.list with arguments")
    add("many-classes.pkl", b"\x80\x02(" + b"".join(f"cm\nC{i}\n".encode() + b")\x81" for i in range(1001)) + b"l.",
        "objects of 1,001 different unknown classes (each class costs ~1 KB)", "different classes")
    add("long-class-name.pkl", b"\x80\x02c" + b"m" * 200_000 + b"\nC\n)\x81.", "a class named by 200,000 characters",
        "a class name of")
    add("next-buffer.pkl", b"\x80\x05\x97.", "protocol 5 NEXT_BUFFER without buffers", "out-of-band")
    add("ext-code.pkl", b"\x80\x02\x82\x01.", "an EXT1 extension code", "extension code")
    add("inst-os-system.pkl", b"(S'touch " + marker("inst").encode() + b"'\nios\nsystem\n.",
        "os.system via the INST opcode", "tries to call os.system")
    add("obj-call.pkl", b"\x80\x01(cfoo\nBar\nK\x01o.", "an unknown class called via the OBJ opcode",
        "tries to call foo.Bar")
    add("stack-global-not-text.pkl", b"\x80\x04K\x01K\x02\x93.", "STACK_GLOBAL with ints", "requires str")
    add("frozenset-key.pkl", b"\x80\x04}(\x91K\x01s.", "a frozenset as a dict key", "not a string, number or tuple")
    add("object-key.pkl", b"\x80\x02}cfoo\nBar\n)\x81K\x01s.", "an object as a dict key",
        "not a string, number or tuple")
    add("memo-read-unwritten.pkl", b"\x80\x02h\x05.", "a memo slot read before it is written", "before it was written")
    add("stack-underflow.pkl", b"\x80\x020.", "POP on an empty stack", "stack underflow")
    add("shape-nan.pkl", array_with_shape(b"G\x7f\xf8\x00\x00\x00\x00\x00\x00\x85"), "an array shape of NaN",
        "invalid shape")
    add("shape-negative.pkl", array_with_shape(b"J\xff\xff\xff\xff\x85"), "an array shape of -1", "invalid shape")
    add("shape-bool.pkl", array_with_shape(b"\x88\x85"), "an array shape of True", "invalid shape")
    add("shape-24000-bit-int.pkl", array_with_shape(b"\x8b" + (3000).to_bytes(4, "little") + b"\x01" * 3000 + b"\x85"),
        "an array shape of a 24,000-bit int (str() of it raises)", "an integer of")
    add("npz-conv-pad-1000.npz", digitlab_npz(tiny_cnn_meta(layer0={"pad": 1000, "stride": 1000})),
        "conv pad and stride of 1,000 in DigitLab metadata (15 GiB requested)", "must be a whole number from",
        isolate=True)
    add("npz-pool-pad-1000.npz", digitlab_npz(tiny_cnn_meta(layer2={"pad": 1000})),
        "pool pad of 1,000 in DigitLab metadata", "pad must be a whole number from 0 to", isolate=True)
    add("npz-forward-memory.npz",
        digitlab_npz(npz_ok + json.dumps({**TINY_CNN, "layers": [
            {"type": "conv", "filters": 1000, "channels": 1, "size": 1, "stride": 1, "pad": 32},
            {"type": "pool", "size": 2, "stride": 64, "pad": 0}, {"type": "affine", "in": 4000, "out": 10}]}) + "}",
            {"W1": np.zeros((1000, 1, 1, 1), np.float32), "b1": np.zeros(1000, np.float32),
             "W2": np.zeros((4000, 10), np.float32), "b2": np.zeros(10, np.float32)}),
        "numbers within every limit whose forward pass needs 32 GiB per batch", "GiB limit", isolate=True)
    add("npz-out-1e400.npz", digitlab_npz(tiny_cnn_meta().replace('"out": 10', '"out": 1e400')),
        '"out": 1e400 in metadata (infinity: an OverflowError traceback)', "too large")
    add("npz-int-5000-digits.npz", digitlab_npz(tiny_cnn_meta().replace('"out": 10', '"out": ' + "9" * 5000)),
        "a 5,000-digit number in metadata", "digits")
    add("npz-nan-input-scale.npz", digitlab_npz(tiny_cnn_meta().replace('"input_scale": 1.0', '"input_scale": NaN')),
        "input_scale NaN in metadata", "NaN is not a number")
    add("npz-huge-input-scale.npz", digitlab_npz(tiny_cnn_meta(input_scale=1e300)), "input_scale 1e300 in metadata",
        "input_scale must be")
    add("npz-bool-size.npz", digitlab_npz(tiny_cnn_meta(layer0={"size": True})), "a conv size of true",
        "size must be a whole number")
    add("npz-json-100k-deep.npz", digitlab_npz("[" * 100_000 + "]" * 100_000),
        "metadata JSON nested 100,000 deep (json.loads recursed: a RecursionError traceback)", "nested 100,000")
    add("npz-json-deep-in-info.npz", digitlab_npz(tiny_cnn_meta()[:-1] + ', "info": ' + '{"a": ' * 20_000 + "1"
                                                  + "}" * 20_001), "metadata nested 20,000 deep inside info",
        "nested 20,00")
    add("npz-metadata-2m-chars.npz", digitlab_npz(json.dumps({"format": "digitlab-weights", "pad": " " * 2_000_000})),
        "2,000,000 characters of metadata", "characters of metadata")
    add("npz-zip-claims-65535-entries.npz", zip_directory(0xFFFF), "an end record claiming 65,535 entries",
        "65,535 entries")
    add("npz-zip64-claims-5m-entries.npz", zip_directory(0xFFFF, zip64_entries=5_000_000),
        "a zip64 end record claiming 5,000,000 entries", "5,000,000 entries")
    add("npz-zip-directory-2gb.npz", zip_directory(1, cd_size=0x7FFFFFFF), "a zip directory of 2 GB declared",
        "zip directory is")
    add("npz-inflates-64mb.npz", inflating_npz(64 << 20),
        "a 65 KB .npz inflating to 64 MB (accepted by the old 100× + 64 MiB rule)", "zip bomb")
    add("npz-lzma-entry.npz", zipped({"W1.npy": npy(np.zeros((784, 2), np.float32))}, zipfile.ZIP_LZMA),
        "an LZMA entry (its dictionary size is the file's to choose)", "compression method")
    add("npz-structured-dtype.npz", zipped({"W1.npy": npy(np.zeros(3, [("a", "<f4"), ("b", "<i4")]))}),
        "a structured dtype", "plain numbers")
    add("npz-metadata-bytes.npz",
        zipped({"W1.npy": npy(np.zeros((784, 10), np.float32)), "__digitlab__.npy": npy(np.array(b"{}"))}),
        "metadata stored as bytes", "plain numbers")


ISSUE14_WHAT = {
    "torch-os-system.pt": "a PyTorch .pt whose data.pkl calls os.system",
    "torch-eval.pt": "a PyTorch .pt whose data.pkl calls builtins.eval",
    "torch-fake-rebuild.pt": "a .pt calling a made-up torch._utils rebuild function",
    "torch-offset-out-of-range.pt": "a tensor whose storage offset lies beyond its record",
    "torch-stride-out-of-range.pt": "a tensor whose strides walk outside its storage",
    "torch-short-record.pt": "a storage record shorter than its element count says",
    "torch-zip-bomb.pt": "a 100 KB .pt whose deflated record inflates to 100 MB",
    "torch-legacy-count-lies.pt": "a legacy-format .pt whose storage count lies",
    "torch-view-bomb.pt": "1,000 tensors viewing one storage (a memory bomb when copied)",
    "gzip-bomb.pkl.gz": "a 65 KB gzip inflating to 64 MB",
    "bz2-bomb.pkl.bz2": "a 79-byte bz2 inflating to 64 MB",
    "xz-bomb.pkl.xz": "a 10 KB xz inflating to 64 MB",
    "gzip-in-gzip-bomb.pkl.gz.gz": "gzip inside gzip, inflating to 64 MB",
    "zip-bomb.pkl.zip": "a zip holding one member that inflates to 64 MB",
    "truncated.pkl.gz": "a gzip-compressed pickle cut short",
    "safetensors-overlapping.safetensors": "safetensors whose tensors share bytes",
    "safetensors-offset-past-end.safetensors": "safetensors data_offsets past the end of the file",
    "safetensors-header-longer-than-file.safetensors": "a safetensors header length larger than the file",
    "safetensors-huge-shape.safetensors": "a safetensors tensor declaring a huge shape for 16 bytes",
}


def issue14_cases(add) -> None:
    """PyTorch, safetensors and compressed files (issue 14): bytes from the fixture writers of those formats."""
    from container_fixtures import hostile_container_cases
    from torch_fixtures import hostile_torch_cases

    for name, (data, refusal) in {**hostile_torch_cases(), **hostile_container_cases()}.items():
        name = name.replace("_", "-")  # the corpus's own naming
        add(name, data, ISSUE14_WHAT[name], refusal, isolate="bomb" in name)


def large_bombs() -> dict[str, tuple[bytes, str, str]]:
    """Bombs too large for the repository (1-11 MB on disk), generated at test time: name -> (data, what, refusal)."""
    return {
        "shared-slots-state-big.pkl": (shared_state(5000, 20000, slots=True),
                                       "20,000 objects sharing a 5,000-entry (None, dict) state", "no weight arrays"),
        "npz-200k-zip-records.npz": (many_zip_records(200_000), "a zip with 200,000 directory records",
                                     "65,535 entries"),
        "npz-inflates-1gb.npz": (inflating_npz(1 << 30), "a 1 MB .npz inflating to 1 GiB", "zip bomb"),
        "hash-flood-45k-int-keys.pkl": (b"\x80\x02}(" + b"".join(long1(k * ((1 << 61) - 1)) + b"N"
                                                                for k in range(1, 45_000)) + b"u.",
                                        "45,000 int keys of one hash value (hours to insert)", "hash-flooding"),
    }


def corpus() -> dict[str, tuple[bytes, str, str, bool]]:
    """file name -> (content, what it tries, a fragment the refusal message must contain, isolate).

    ``isolate``: a regression would crash the process or exhaust memory, so tests load the file
    only in a child process under a memory cap (test_hostile_isolated.py).
    """
    import os

    files: dict[str, tuple[bytes, str, str, bool]] = {}

    def add(name: str, data: bytes, what: str, refusal: str, isolate: bool = False) -> None:
        files[name] = (data, what, refusal, isolate)

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
    issue11_cases(add)
    issue14_cases(add)
    return files


def write(folder: Path = HERE) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {}
    written = []
    for name, (data, what, refusal, isolate) in corpus().items():
        (folder / name).write_bytes(data)
        manifest[name] = {"what": what, "expect": "refused", "refusal": refusal, **({"isolate": True} if isolate else {})}
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
