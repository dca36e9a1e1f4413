"""engine.weightfiles.safe_pickle: weight pickles of every protocol load; nothing a file names is imported or called."""
from __future__ import annotations

import io
import pickle
import sys
import warnings
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import UnsafePickleError, WeightFileError
from engine.weightfiles.pickle_names import StandIn, make_stand_in
from engine.weightfiles import safe_pickle
from engine.weightfiles.safe_pickle import loads, safe_load
from engine.weightfiles.save import rename_globals

# Written by numpy 1.x-style pickling (module numpy.core.multiarray), spelled out byte by byte so the test
# does not depend on how the installed numpy pickles: np.array([1.5, -2.0, 0.25], dtype='<f4'), protocol 2.
NUMPY1_PROTOCOL2 = (
    b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x00cnumpy\nndarray\nq\x01K\x00\x85q\x02c_codecs\nencode\n"
    b"q\x03X\x01\x00\x00\x00bq\x04X\x06\x00\x00\x00latin1q\x05\x86q\x06Rq\x07\x87q\x08Rq\t(K\x01K\x03\x85q\n"
    b"cnumpy\ndtype\nq\x0bX\x02\x00\x00\x00f4q\x0c\x89\x88\x87q\rRq\x0e(K\x03X\x01\x00\x00\x00<q\x0fNNN"
    b"J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tq\x10b\x89h\x03X\x0f\x00\x00\x00\x00\x00\xc3\x80?\x00\x00\x00"
    b"\xc3\x80\x00\x00\xc2\x80>q\x11h\x05\x86q\x12Rq\x13tq\x14b."
)
# {'b1': np.array([1.5, -2.0])} as protocol 0 text with the numpy 1.x module name.
NUMPY1_PROTOCOL0 = (
    b"(dp0\nVb1\np1\ncnumpy.core.multiarray\n_reconstruct\np2\n(cnumpy\nndarray\np3\n(I0\ntp4\nc_codecs\nencode\n"
    b"p5\n(Vb\np6\nVlatin1\np7\ntp8\nRp9\ntp10\nRp11\n(I1\n(I2\ntp12\ncnumpy\ndtype\np13\n(Vf8\np14\nI00\nI01\n"
    b"tp15\nRp16\n(I3\nV<\np17\nNNNI-1\nI-1\nI0\ntp18\nbI00\ng5\n(V\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000"
    b"\xf8?\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\xc0\np19\ng7\ntp20\nRp21\ntp22\nbs."
)


def sample_object() -> dict:
    rng = np.random.default_rng(3)
    return {
        "W1": rng.standard_normal((784, 5)).astype(np.float32),
        "b1": np.zeros(5, np.float32),
        "f64": rng.standard_normal((3, 4)),
        "fortran": np.asfortranarray(rng.standard_normal((3, 4))),
        "big_endian": np.arange(6, dtype=">f8").reshape(2, 3),
        "ints": np.arange(10, dtype=np.int64),
        "bools": np.array([True, False]),
        "half": np.ones(3, np.float16),
        "zero_d": np.array(2.5),
        "empty": np.zeros((0, 3), np.float32),
        "scalar32": np.float32(1.25),
        "scalar64": np.float64(-3.5),
        "ordered": OrderedDict([("b", 1), ("a", [1, 2, (3, 4)])]),
        "set": {1, 2, 3},
        "frozen": frozenset({"x"}),
        "bytes": b"\x00\xffabc",
        "empty_bytes": b"",
        "bytearray": bytearray(b"xyz"),
        "complex": 1 + 2j,
        "nested": [{"deep": (None, True, 1.0, "text")}],
    }


def assert_same(a, b, native: bool = True) -> None:
    """Equal values and types; ``native``: b's arrays are in native byte order (what safe loading promises)."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.shape == b.shape
        assert a.dtype.newbyteorder("=") == b.dtype.newbyteorder("=") and (b.dtype.isnative or not native)
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert type(a) is type(b) and list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k], native)
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y, native)
    else:
        assert type(a) is type(b) and a == b


@pytest.mark.parametrize("protocol", range(6))
def test_every_protocol_loads_what_real_pickle_loads(protocol):
    obj = sample_object()
    data = pickle.dumps(obj, protocol=protocol)
    assert_same(pickle.loads(data), loads(data))
    assert_same(obj, loads(data))


@pytest.mark.parametrize("protocol", range(6))
def test_numpy1_module_names_load(protocol):
    obj = sample_object()
    data = rename_globals(pickle.dumps(obj, protocol=protocol))
    assert b"numpy.core.multiarray" in data and b"numpy._core" not in data
    assert_same(obj, loads(data))
    with warnings.catch_warnings():  # numpy 2 warns about numpy.core.numeric (protocol 5), not numpy.core.multiarray
        warnings.simplefilter("ignore" if protocol == 5 else "error", DeprecationWarning)
        assert_same(obj, pickle.loads(data), native=False)  # the renamed pickle is still valid for the real unpickler


def test_hand_written_numpy1_pickles():
    np.testing.assert_array_equal(loads(NUMPY1_PROTOCOL2), np.array([1.5, -2.0, 0.25], np.float32))
    assert loads(NUMPY1_PROTOCOL2).dtype == np.float32
    out = loads(NUMPY1_PROTOCOL0)
    assert list(out) == ["b1"]
    np.testing.assert_array_equal(out["b1"], [1.5, -2.0])


def test_arrays_are_writable_copies():
    arr = loads(pickle.dumps(np.arange(4.0), protocol=5))
    arr[0] = 7.0
    assert arr[0] == 7.0


def _pickle_as(module: str, name: str, state: dict, protocol: int) -> bytes:
    cls = type(name, (), {"__module__": module, "__qualname__": name})
    mod = type(sys)(module)
    setattr(mod, name, cls)
    sys.modules[module] = mod
    try:
        obj = cls.__new__(cls)
        obj.__dict__.update(state)
        return pickle.dumps(obj, protocol=protocol)
    finally:
        del sys.modules[module]


@pytest.mark.parametrize("protocol", range(6))
def test_unknown_class_loads_as_inert_stand_in(protocol):
    module = "digitlab_never_importable_module"
    state = {"params": {"W1": np.ones((2, 3), np.float32)}, "label": "net"}
    data = _pickle_as(module, "TwoLayerNet", state, protocol)
    obj = loads(data)
    assert isinstance(obj, StandIn)
    assert obj.qualified_name == f"{module}.TwoLayerNet"
    assert obj.attributes["label"] == "net"
    np.testing.assert_array_equal(obj.attributes["params"]["W1"], np.ones((2, 3)))
    assert module not in sys.modules


def test_existing_module_is_never_imported():
    if "this" in sys.modules:
        pytest.skip("the 'this' module was already imported by something else")
    data = b"\x80\x02cthis\ns\nq\x00."  # a reference to this.s (importing `this` prints the Zen of Python)
    obj = loads(data)
    assert isinstance(obj, type) and obj.module == "this" and obj.name == "s"
    assert "this" not in sys.modules


@pytest.mark.parametrize("protocol", range(6))
def test_calling_a_stand_in_is_refused(protocol):
    class Evil:
        def __reduce__(self):
            return (print, ("should never print",))

    data = pickle.dumps(Evil(), protocol=protocol)
    with pytest.raises(UnsafePickleError, match=r"refused: the file tries to call builtins\.print"):
        loads(data)


def test_stand_in_classes_cannot_be_called_or_modified_directly():
    cls = make_stand_in("os", "system")
    with pytest.raises(UnsafePickleError, match="os.system"):
        cls("touch /tmp/x")
    with pytest.raises(UnsafePickleError, match="modify os.system"):
        cls.__init__ = print
    instance = cls.__new__(cls, 1, 2)
    assert instance.args == (1, 2) and instance.qualified_name == "os.system"


def test_persistent_ids_and_out_of_band_buffers_are_refused():
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return "ext" if obj == "external" else None

    buf = io.BytesIO()
    P(buf, protocol=2).dump(["external"])
    with pytest.raises(UnsafePickleError, match="persistent id"):
        loads(buf.getvalue())
    data = pickle.dumps(pickle.PickleBuffer(np.arange(3.0)), protocol=5, buffer_callback=lambda b: False)
    with pytest.raises(WeightFileError, match="out-of-band"):
        loads(data)


def test_sources_path_bytes_and_file(tmp_path):
    data = pickle.dumps({"W1": np.ones(3)})
    path = tmp_path / "w.pkl"
    path.write_bytes(data)
    for source in (path, str(path), data, bytearray(data), io.BytesIO(data)):
        np.testing.assert_array_equal(safe_load(source)["W1"], np.ones(3))
    with open(path, encoding="latin-1") as text, pytest.raises(WeightFileError, match="binary mode"):
        safe_load(text)
    with pytest.raises(WeightFileError, match="missing.pkl: no such file"):
        safe_load(tmp_path / "missing.pkl")
    with pytest.raises(WeightFileError, match="empty"):
        safe_load(b"")


def test_files_over_the_size_limit_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "big.pkl"
    path.write_bytes(pickle.dumps(np.zeros(1000)))
    monkeypatch.setattr(safe_pickle, "MAX_FILE_BYTES", 1000)
    with pytest.raises(WeightFileError, match="larger than"):
        safe_load(path)


def test_reused_array_data_cannot_multiply_memory():
    # one 80 kB bytes object referenced by 50 arrays: 4 MB of arrays built from an 80 kB file
    state_bytes = b"\x00" * 80_000

    class Arr:
        def __reduce__(self):
            from numpy._core.multiarray import _reconstruct

            return _reconstruct, (np.ndarray, (0,), b"b"), (1, (10_000,), np.dtype("f8"), False, state_bytes)

    bomb = pickle.dumps([Arr() for _ in range(50)], protocol=4)  # the bytes are memoised: stored once
    assert len(bomb) < 2 * len(state_bytes)
    with pytest.raises(UnsafePickleError, match="larger than the file"):
        loads(bomb)


def test_deep_nesting_and_memo_bombs_are_refused():
    deep = b"\x80\x02" + b"]" * 5000 + b"a" * 4999 + b"."
    with pytest.raises(UnsafePickleError, match="nested more than"):
        loads(deep)
    with pytest.raises(UnsafePickleError, match="memo index"):
        loads(b"\x80\x02]r\xff\xff\xff\x7f.")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_weight_file_errors(data):
    try:
        loads(data)
    except WeightFileError:
        pass


VALID = [pickle.dumps(sample_object(), protocol=p) for p in range(6)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.data())
def test_mutated_pickles_raise_only_weight_file_errors(valid, data):
    mutated = bytearray(valid)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(mutated) - 1))
        mutated[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(mutated)))
    try:
        loads(bytes(mutated[:cut]))
    except WeightFileError:
        pass


# ----- issue 11: nesting, shared state, containers, keys

def nested(kind: str, depth: int):
    value = None
    for _ in range(depth):
        value = {"k": value} if kind == "dict" else [value] if kind == "list" else (value,)
    return value


@pytest.mark.parametrize("kind", ["tuple", "list", "dict"])
def test_nesting_up_to_the_limit_loads_and_beyond_is_refused(kind):
    ok = nested(kind, safe_pickle.MAX_DEPTH - 1)
    assert loads(pickle.dumps(ok, protocol=4)) == ok
    with pytest.raises(UnsafePickleError, match="nested more than"):
        loads(pickle.dumps(nested(kind, safe_pickle.MAX_DEPTH + 1), protocol=4))


def test_a_deep_tuple_as_a_key_is_refused_before_it_is_hashed():
    data = b"\x80\x02}" + b")" + b"\x85" * 5000 + b"K\x01s."  # {((((…)))): 1}, 5,000 levels
    with pytest.raises(UnsafePickleError, match="nested more than"):
        loads(data)


def test_objects_sharing_state_share_it_after_loading():
    # [Bar(state), Bar(same state)]: BUILD with one memoised dict, as pickle writes shared __dict__s
    both = loads(b"\x80\x02(cfoo\nBar\n)\x81}q\x00X\x01\x00\x00\x00aK\x01sbcfoo\nBar\n)\x81h\x00bl.")
    assert [o.attributes["a"] for o in both] == [1, 1]
    assert both[0].attributes is both[1].attributes  # a view, never a copy per object
    cls = make_stand_in("m", "C")
    one = cls.__new__(cls)
    one.__setstate__(({"a": 1}, {"b": 2}))  # (__dict__, slots) state: merged without copying either
    assert dict(one.attributes) == {"a": 1, "b": 2}


def test_containers_come_back_as_plain_builtin_types():
    obj = {"od": OrderedDict(a=1), "d": {"x": [1, 2]}, "l": [[]]}
    for protocol in range(6):
        out = loads(pickle.dumps(obj, protocol=protocol))
        assert type(out) is dict and type(out["od"]) is OrderedDict and type(out["d"]) is dict
        assert type(out["l"]) is list and type(out["l"][0]) is list and out == obj


@pytest.mark.parametrize("data, message", [
    (b"\x80\x02ccollections\nOrderedDict\n)R}X\x06\x00\x00\x00valuesK\x01sb.", "sets attributes on a collections"),
    (b"\x80\x02c__builtin__\nlist\nC\x04abcd\x85R.", "builtins.list with arguments other than a list"),
    (b"\x80\x04}(\x91K\x01s.", "not a string, number or tuple"),
    (b"\x80\x02}(" + b"".join(b"\x8a\x09" + (k * ((1 << 61) - 1)).to_bytes(9, "little") + b"N" for k in range(1, 40))
     + b"u.", "hash-flooding"),
    (b"\x80\x02(" + b"".join(f"cm\nC{i}\n".encode() + b")\x81" for i in range(1001)) + b"l.", "different classes"),
    (b"\x80\x02c" + b"m" * 2000 + b"\nC\n.", "a class name of 2,001 characters"),
])
def test_crafted_containers_keys_and_names_are_refused(data, message):
    with pytest.raises(UnsafePickleError, match=message):
        loads(data)


def test_constructors_may_not_copy_more_than_the_file_holds():
    big = b"(" + b"K\x01" * 10_000 + b"tq\x00"  # one memoised 10,000-item tuple…
    head = b"\x80\x02" + big + b"0c__builtin__\nset\nq\x010("  # set(tuple) below, the tuple memoised once
    assert loads(head + b"h\x01h\x00\x85R" * 2 + b"l.") == [{1}, {1}]
    with pytest.raises(UnsafePickleError, match="copy more data"):
        loads(head + b"h\x01h\x00\x85R" * 200 + b"l.")  # …copied 200 times


_KEYS = st.one_of(st.text(max_size=5), st.integers(), st.floats(allow_nan=False), st.binary(max_size=4),
                  st.tuples(st.integers(), st.text(max_size=3)))
_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8),
              st.binary(max_size=8), st.builds(lambda n: np.arange(n, dtype=np.float32), st.integers(0, 5))),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                            st.dictionaries(_KEYS, inner, max_size=4),
                            st.dictionaries(st.text(max_size=4), inner, max_size=3).map(OrderedDict),
                            st.sets(st.integers(), max_size=4), st.frozensets(st.text(max_size=3), max_size=3)),
    max_leaves=25)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_VALUES, st.integers(0, 5))
def test_plain_data_of_every_kind_loads_exactly_as_pickle_loads_it(value, protocol):
    data = pickle.dumps(value, protocol=protocol)
    assert_same(pickle.loads(data), loads(data))
