"""Read and write ``.safetensors`` files directly, trusting none of the sizes a file states.

The format (https://github.com/huggingface/safetensors): an 8-byte little-endian length ``N``, ``N``
bytes of UTF-8 JSON ``{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
"__metadata__": {str: str}}``, then the byte buffer the offsets point into (little-endian, C order).

Reading checks, before any array is built: the header's length (against the format's 100 MB and
the file), its size and nesting (bounded before ``json.loads``), every number, every dtype, that
each tensor's offsets lie inside the buffer and hold exactly ``prod(shape) * itemsize`` bytes, and
that no two tensors share bytes: the arrays built therefore never add up to more than the file.
Unused bytes between or after the tensors (which the reference writer never leaves) cost nothing and are allowed.
Writing produces the same bytes as the reference writer (``safetensors.numpy.save``): tensors
ordered by dtype alignment (largest first) then name, header padded with spaces to a multiple of 8.
"""
from __future__ import annotations

import json
import struct
from collections.abc import Mapping

import numpy as np

from engine.errors import WeightFileError
from engine.util import printable
from engine.weightfiles.metadata import json_depth
from engine.weightfiles.npz import MAX_NDIM
from engine.weightfiles.pickle_scan import short_error

MAX_HEADER_BYTES = 100_000_000  # the format's own limit (the reference reader refuses larger headers)
MAX_HEADER_JSON = 8 << 20  # parsed at most: 10,000 entries of ~800 characters; an MNIST model's header is ~1 KB
MAX_TENSORS = 10_000  # a weight file has a few dozen tensors; a large language model a few thousand
MAX_HEADER_DEPTH = 3  # the format nests exactly this deep: header > tensor entry > shape list
MAX_NUMBER_CHARS = 20  # digits of one shape entry or offset: 2**64 has 20
MAX_DIMENSION = 1 << 48  # one axis: far beyond any memory
MAX_ARRAY_BYTES = 1 << 62  # numpy refuses shapes whose sizes multiply beyond this, even with another size 0
METADATA = "__metadata__"
_LENGTH = struct.Struct("<Q")
# the format's dtype names -> little-endian NumPy dtypes; BF16 has no NumPy dtype and is widened on reading
DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
          "I8": "i1", "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "u1"}
_NAMES = {np.dtype(np.float64): "F64", np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
          np.dtype(np.int64): "I64", np.dtype(np.int32): "I32", np.dtype(np.int16): "I16", np.dtype(np.int8): "I8",
          np.dtype(np.uint8): "U8", np.dtype(np.uint16): "U16", np.dtype(np.uint32): "U32",
          np.dtype(np.uint64): "U64", np.dtype(np.bool_): "BOOL"}
# the reference writer sorts tensors by its Dtype enum, largest first (the order observed from safetensors 0.8)
_RANK = {"BOOL": 0, "U8": 4, "I8": 5, "I16": 9, "U16": 10, "F16": 11, "BF16": 12, "I32": 13, "U32": 14, "F32": 15,
         "F64": 17, "I64": 18, "U64": 19}


class _BadNumber(WeightFileError):
    pass


def is_safetensors(data: bytes) -> bool:
    """Whether ``data`` looks like a safetensors file: a header length within the format's limit, then ``{``.

    A header longer than the file still counts, so a truncated file gets the safetensors reader's message.
    """
    if len(data) < 10:
        return False
    (length,) = _LENGTH.unpack_from(data)
    return 2 <= length <= MAX_HEADER_BYTES and data[8:9] == b"{"


def _parse_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _BadNumber(f"a number of {len(text):,} digits")
    return int(text)


def _no_float(text: str):
    raise _BadNumber(f"the number {printable(text, 40)} (shapes and offsets are whole numbers)")


def _unique_keys(pairs: list) -> dict:
    out = {}
    for key, value in pairs:
        if key in out:
            raise _BadNumber(f"the name {printable(key, 80)!r} appears twice")
        out[key] = value
    return out


def _header(data: bytes, where: str) -> tuple[dict, int]:
    """The parsed JSON header and where the byte buffer starts."""
    if len(data) < 8:
        raise WeightFileError(f"{where}: not a safetensors file ({len(data)} bytes; the header length alone is 8)")
    (length,) = _LENGTH.unpack_from(data)
    bad = f"{where}: not a valid safetensors file"
    if length > MAX_HEADER_BYTES:
        raise WeightFileError(f"{bad} (its header claims {length:,} bytes; the format allows at most "
                              f"{MAX_HEADER_BYTES:,})")
    if length > len(data) - 8:
        raise WeightFileError(f"{bad} (its header claims {length:,} bytes but the file holds only {len(data) - 8:,} "
                              "after the length: the file is truncated)")
    if length > MAX_HEADER_JSON:
        raise WeightFileError(f"{where}: refused: a safetensors header of {length:,} bytes (a weight file's is a "
                              f"few KB; at most {MAX_HEADER_JSON:,})")
    try:
        text = data[8:8 + length].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WeightFileError(f"{bad} (the header is not UTF-8 text: {short_error(exc, 120)})") from None
    if not text.startswith("{"):
        raise WeightFileError(f"{bad} (the header does not start with '{{')")
    depth = json_depth(text)  # json.loads recurses: bound the nesting before parsing
    if depth > MAX_HEADER_DEPTH:
        raise WeightFileError(f"{bad} (the header nests {depth:,} levels deep; the format nests {MAX_HEADER_DEPTH})")
    try:
        header = json.loads(text, parse_int=_parse_int, parse_float=_no_float, parse_constant=_no_float,
                            object_pairs_hook=_unique_keys)
    except _BadNumber as exc:
        raise WeightFileError(f"{bad} (the header has {exc})") from None
    except (ValueError, RecursionError) as exc:
        raise WeightFileError(f"{bad} (the header is not valid JSON: {short_error(exc, 120)})") from None
    if not isinstance(header, dict):
        raise WeightFileError(f"{bad} (the header is a JSON {type(header).__name__}, not an object)")
    return header, 8 + length


def _metadata(value, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise WeightFileError(f"{where}: the safetensors {METADATA} is a JSON {type(value).__name__}, not an object "
                              "of text")
    for key, text in value.items():
        if not isinstance(text, str):
            raise WeightFileError(f"{where}: the safetensors {METADATA} entry {printable(key, 80)!r} is a JSON "
                                  f"{type(text).__name__}; the format allows only text values")
    return dict(value)


def _entry(name: str, info, where: str, size: int) -> tuple[str, tuple, int, int]:
    """(dtype name, shape, begin, end) of one tensor, every field checked against the buffer's ``size``."""
    what = f"{where}: tensor {printable(name, 80)!r}"
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
        raise WeightFileError(f"{what} is not described by dtype, shape and data_offsets")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str):
        raise WeightFileError(f"{what} has a dtype that is not text")
    if dtype not in DTYPES:
        raise WeightFileError(f"{what} has dtype {printable(dtype, 40)}, which DigitLab does not read (it reads "
                              f"{', '.join(DTYPES)}; convert the tensor to float32 before saving)")
    if not isinstance(shape, list) or len(shape) > MAX_NDIM:
        raise WeightFileError(f"{what} has a shape that is not a list of at most {MAX_NDIM} sizes")
    if not all(type(n) is int and 0 <= n <= MAX_DIMENSION for n in shape):
        raise WeightFileError(f"{what} has shape {printable(shape, 80)}; sizes are whole numbers from 0 to "
                              f"{MAX_DIMENSION:,}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(n) is int for n in offsets)):
        raise WeightFileError(f"{what} has data_offsets {printable(offsets, 80)}; expected [begin, end]")
    begin, end = offsets
    if not 0 <= begin <= end:
        raise WeightFileError(f"{what} has data_offsets [{begin:,}, {end:,}]; expected 0 <= begin <= end")
    if end > size:
        raise WeightFileError(f"{what} has data_offsets [{begin:,}, {end:,}] past the end of the data "
                              f"({size:,} bytes: the file is truncated or damaged)")
    itemsize = np.dtype(DTYPES[dtype]).itemsize
    if int(np.prod([max(n, 1) for n in shape], dtype=object)) * itemsize > MAX_ARRAY_BYTES:
        raise WeightFileError(f"{what} declares shape {printable(shape, 80)}, larger than any array can be")
    nbytes = int(np.prod(shape, dtype=object)) * itemsize  # Python ints: no overflow
    if nbytes != end - begin:
        raise WeightFileError(f"{what} declares shape {printable(shape, 80)} of {dtype} ({nbytes:,} bytes) but its "
                              f"data_offsets hold {end - begin:,} bytes")
    return dtype, tuple(shape), begin, end


def _check_overlaps(spans: list[tuple[int, int, str]], where: str) -> None:
    """Refuse tensors that share bytes: the format forbids it, and it would let a small file build huge arrays."""
    previous_end, previous = 0, ""
    for begin, end, name in sorted(s for s in spans if s[1] > s[0]):
        if begin < previous_end:
            raise WeightFileError(f"{where}: refused: tensors {printable(previous, 80)!r} and {printable(name, 80)!r}"
                                  " overlap in the file's data (the format forbids shared bytes)")
        previous_end, previous = end, name


def _array(data: bytes, start: int, dtype: str, shape: tuple, begin: int, end: int) -> np.ndarray:
    raw = np.frombuffer(data, np.dtype(DTYPES[dtype]), (end - begin) // np.dtype(DTYPES[dtype]).itemsize,
                        start + begin)
    if dtype == "BF16":  # bfloat16 is the top half of a float32: shift the bits into place
        arr = (raw.astype(np.uint32) << 16).view(np.float32)
    elif dtype == "BOOL":  # any non-zero byte is True; numpy would keep other byte values as odd booleans
        arr = raw != 0
    else:
        arr = raw.astype(raw.dtype.newbyteorder("="))  # a native-order copy, independent of ``data``
    return arr.reshape(shape)


def read_safetensors(data: bytes, where: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors of a safetensors file (in header order) and its ``__metadata__``; every size checked first."""
    header, start = _header(data, where)
    size = len(data) - start
    metadata = _metadata(header.pop(METADATA), where) if METADATA in header else {}
    if len(header) > MAX_TENSORS:
        raise WeightFileError(f"{where}: refused: the safetensors header lists {len(header):,} tensors (a weight "
                              f"file has a few dozen; at most {MAX_TENSORS:,})")
    entries = {name: _entry(name, info, where, size) for name, info in header.items()}
    _check_overlaps([(begin, end, name) for name, (_d, _s, begin, end) in entries.items()], where)
    arrays = {}
    for name, (dtype, shape, begin, end) in entries.items():
        try:
            arrays[name] = _array(data, start, dtype, shape, begin, end)
        except MemoryError:
            raise WeightFileError(f"{where}: refused: tensor {printable(name, 80)!r} does not fit in memory") from None
    return arrays, metadata


def _layout(arrays: Mapping[str, np.ndarray]) -> list[tuple[str, str, np.ndarray]]:
    """(name, dtype name, little-endian C-ordered array) in the reference writer's order."""
    out = []
    for name, value in arrays.items():
        if not isinstance(name, str) or name == METADATA:
            raise WeightFileError(f"cannot save a tensor named {printable(repr(name), 80)} in a safetensors file")
        arr = np.asarray(value)
        dtype = _NAMES.get(arr.dtype.newbyteorder("="))
        if dtype is None:
            raise WeightFileError(f"cannot save tensor {printable(name, 80)!r} of dtype {arr.dtype} in a safetensors "
                                  f"file (it holds {', '.join(_NAMES.values())})")
        out.append((name, dtype, arr.astype(arr.dtype.newbyteorder("<"), order="C", copy=False)))
    return sorted(out, key=lambda item: (-_RANK[item[1]], item[0]))


def write_safetensors(f, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> None:
    """Write ``arrays`` (and text ``metadata``) to the binary file ``f`` as the reference writer would."""
    layout = _layout(arrays)
    header: dict = {}
    if metadata is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise WeightFileError("safetensors metadata holds only text keys and text values")
        header[METADATA] = dict(sorted(metadata.items()))  # the reference's order is random (a hash map)
    offset = 0
    for name, dtype, arr in layout:
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    try:
        text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError as exc:  # a name holding a lone surrogate
        raise WeightFileError(f"cannot save a name that is not valid Unicode ({short_error(exc, 120)})") from None
    text += b" " * (-len(text) % 8)  # the reference pads the header to a multiple of 8 so the data is aligned
    f.write(_LENGTH.pack(len(text)))
    f.write(text)
    for _name, _dtype, arr in layout:
        if arr.nbytes:
            f.write(memoryview(arr.reshape(-1).view(np.uint8)))
