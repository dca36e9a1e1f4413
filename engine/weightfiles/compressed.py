"""Compressed and zipped weight files, recognised by their first bytes, inflated only as far as the file justifies.

* :func:`unwrap` takes off gzip, bz2 and xz layers (at most :data:`MAX_LAYERS`), each inflated
  incrementally with a bounded output: a compression bomb is refused after at most ``limit`` bytes.
* :func:`zip_kind` says what a zip holds (an ``.npz``, a PyTorch archive, a Keras archive, one
  zipped file) after :func:`engine.weightfiles.npz.check_directory` has bounded its directory.
* :func:`extract_single` reads the one member of a zip with the same bound.
* :func:`unsupported_format` names formats DigitLab knows but does not read, and what would be needed.
"""
from __future__ import annotations

import bz2
import io
import lzma
import zipfile
import zlib

import numpy as np

from engine.errors import WeightFileError
from engine.util import printable
from engine.weightfiles.npz import open_zip
from engine.weightfiles.pickle_scan import short_error
from engine.weightfiles.safe_pickle import MAX_FILE_BYTES
from engine.weightfiles.text import names

# Real files expand far less than 50×: Nielsen's mnist.pkl.gz 13× (17 MB -> 220 MB), pickled float weights ~1.1×.
EXPANSION = 50
# A small file may expand more (all-zero weights compress ~1000×); 16 MB covers any such MNIST model, and keeps
# a bomb's damage small: 64 MB of zeros (a 64 KB gzip) is refused after 19 MB.
SLACK = 16 << 20
MAX_LAYERS = 3  # a file compressed, then at most twice more (by a tool, a mail or a download); more is a bomb
MAX_MEMBERS = 10_000  # concatenated streams: one or a few (BGZF writes one per 64 KB); empty ones cost time only
_IN_CHUNK = 1 << 16  # input fed at a time: unconsumed input is copied on every call
_OUT_CHUNK = 1 << 20
_GZIP, _XZ = b"\x1f\x8b", b"\xfd7zXZ\x00"
_HDF5 = b"\x89HDF\r\n\x1a\n"
_PACKED = ((lambda d: d[:4] == b"\x28\xb5\x2f\xfd", "zstandard-compressed", "zstd -d"),
           (lambda d: d[:4] == b"\x04\x22\x4d\x18", "LZ4-compressed", "lz4 -d"),
           (lambda d: d[:6] == b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "7z x"),
           (lambda d: d[:6] == b"Rar!\x1a\x07", "a RAR archive", "unrar x"),
           (lambda d: d[257:262] == b"ustar", "a tar archive", "tar xf"))


def compression(data: bytes) -> str | None:
    """``"gzip"``, ``"bz2"``, ``"xz"`` or None, from the magic bytes."""
    if data[:2] == _GZIP:
        return "gzip"
    if data[:3] == b"BZh" and data[3:4].isdigit() and data[3:4] != b"0":
        return "bz2"
    if data[:6] == _XZ:
        return "xz"
    return None


class _Stream:
    """One decompressor behind one interface: ``feed`` returns at most ``room`` bytes."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        if kind == "gzip":
            self._d = zlib.decompressobj(zlib.MAX_WBITS | 16)  # | 16: expect the gzip header and trailer
        elif kind == "bz2":
            self._d = bz2.BZ2Decompressor()
        else:
            self._d = lzma.LZMADecompressor(lzma.FORMAT_XZ)
        self._full = False  # the last call filled its room: the decompressor may hold more output

    @property
    def eof(self) -> bool:
        return self._d.eof

    @property
    def unused(self) -> bytes:
        return self._d.unused_data

    def wants_input(self) -> bool:
        if self.kind == "gzip":
            return not self._d.unconsumed_tail and not self._full
        return self._d.needs_input

    def feed(self, chunk, room: int) -> bytes:
        if self.kind == "gzip" and self._d.unconsumed_tail:
            chunk = self._d.unconsumed_tail
        out = self._d.decompress(chunk, room)
        self._full = len(out) == room
        return out


def _bomb(where: str, kind: str, limit: int, size: int) -> WeightFileError:
    return WeightFileError(f"{where}: refused: the {kind} decompresses to more than {limit:,} bytes (a "
                           f"compression bomb: a file of {size:,} bytes does not hold that much)")


def _inflate(data: bytes, kind: str, where: str, limit: int, size: int, inside: str = "") -> tuple[bytes, int]:
    """Every concatenated ``kind`` stream in ``data`` inflated (at most ``limit`` bytes), and how many there were.

    ``inside`` says which layer this is (" inside the xz data") for the messages.
    """
    view, out, pos, members = memoryview(data), io.BytesIO(), 0, 0
    while True:
        members += 1
        if members > MAX_MEMBERS:
            raise WeightFileError(f"{where}: refused: more than {MAX_MEMBERS:,} concatenated {kind} streams{inside} "
                                  "(a compressed file holds one or a few)")
        stream, fed = _Stream(kind), pos
        while not stream.eof:
            if stream.wants_input():
                if fed >= len(view):
                    raise WeightFileError(f"{where}: the {kind} stream{inside} ends early (the file is truncated)")
                chunk, fed = view[fed:fed + _IN_CHUNK], min(fed + _IN_CHUNK, len(view))
            else:
                chunk = b""
            room = min(_OUT_CHUNK, limit - out.tell() + 1)  # one byte over the limit proves the bomb
            try:
                out.write(stream.feed(chunk, room))
            except (zlib.error, OSError, lzma.LZMAError, EOFError) as exc:
                raise WeightFileError(f"{where}: the {kind} data{inside} is damaged ({short_error(exc, 120)})"
                                      ) from None
            if out.tell() > limit:
                raise _bomb(where, f"{kind} data{inside}", limit, size)
        pos = fed - len(stream.unused)
        rest = view[pos:]
        if not rest:
            break
        if compression(bytes(rest[:6])) != kind:
            # gzip and xz tools skip zero padding after a stream (tape blocks, xz stream padding)
            if not np.frombuffer(rest, np.uint8).any():
                break
            raise WeightFileError(f"{where}: {len(rest):,} byte(s) of other data follow the {kind} data{inside} (the "
                                  "file is damaged or is not a single compressed file)")
    return out.getvalue(), members


def unwrap(data: bytes, where: str, origin: int | None = None) -> tuple[bytes, list[str]]:
    """``data`` with any gzip/bz2/xz layers taken off (bounded by the file's size), and a note per layer.

    ``origin``: the size of the file on disk when ``data`` was itself unpacked from it (a zipped .pkl.gz), so that
    packing inside packing cannot multiply the bound.
    """
    size = origin or len(data)
    limit = min(MAX_FILE_BYTES, EXPANSION * size + SLACK)  # every layer is bounded by the file on disk
    notes: list[str] = []
    layers: list[str] = []
    kind = compression(data)
    while kind is not None:
        if len(layers) == MAX_LAYERS:
            raise WeightFileError(f"{where}: refused: compressed more than {MAX_LAYERS} times over (a weight file "
                                  "is compressed once)")
        inside = "".join(f" inside the {outer} data" for outer in reversed(layers))
        inner, members = _inflate(data, kind, where, limit, size, inside)
        layers.append(kind)
        streams = f", {members:,} streams" if members > 1 else ""
        notes.append(f"{kind}-compressed{streams} ({len(data):,} -> {len(inner):,} bytes)")
        data, kind = inner, compression(inner)
    return data, notes


def _files(data: bytes, where: str) -> list[zipfile.ZipInfo]:
    """The zip's file entries (folders left out), its directory bounded first."""
    return [info for info in open_zip(data, where)[1] if not info.is_dir()]


def _classify(files: list[zipfile.ZipInfo]) -> str | None:
    paths = [info.filename for info in files]
    if paths and all(p.endswith(".npy") for p in paths):
        return "npz"
    tops = {p.split("/", 1)[0] for p in paths}
    if len(tops) == 1 and all("/" in p for p in paths):
        top = tops.pop()
        if f"{top}/data.pkl" in paths:
            # torch.jit.save writes the same layout plus the model's Python source under code/
            scripted = any(p.startswith(f"{top}/code/") or p == f"{top}/constants.pkl" for p in paths)
            return "torchscript" if scripted else "torch"
    if "config.json" in paths and ("model.weights.h5" in paths or "metadata.json" in paths):
        return "keras"
    if len(paths) == 1:
        return "single"
    return None


def _torchscript(where: str) -> str:
    return (f"{where}: a TorchScript archive (torch.jit.save): not supported (it holds code, which DigitLab never "
            "runs); save the weights with torch.save(model.state_dict(), 'weights.pt') or as .safetensors")


def zip_kind(data: bytes, where: str) -> str:
    """``"npz"``, ``"torch"``, ``"keras"`` or ``"single"``; any other zip -> WeightFileError saying what it holds."""
    files = _files(data, where)
    kind = _classify(files)
    if kind == "torchscript":
        raise WeightFileError(_torchscript(where))
    if kind is None:
        held = names(printable(info.filename, 80) for info in files) if files else "nothing"
        raise WeightFileError(f"{where}: a zip of {len(files):,} files ({held}), not a weight file DigitLab reads "
                              "(an .npz of arrays, a PyTorch .pt archive, or one zipped weight file)")
    return kind


def extract_single(data: bytes, where: str, origin: int | None = None) -> tuple[bytes, str]:
    """The bytes and name of a zip's one file, inflated no further than the file's size (``origin``, see unwrap)
    justifies."""
    files = _files(data, where)
    if len(files) != 1:
        raise WeightFileError(f"{where}: a zip of {len(files):,} files, not one zipped weight file")
    info = files[0]
    name = printable(info.filename, 80)
    size = origin or len(data)
    limit = min(MAX_FILE_BYTES, EXPANSION * size + SLACK)
    if info.file_size > limit:  # the declared size, checked before inflating anything
        raise WeightFileError(f"{where}: refused: the zipped file {name!r} decompresses to {info.file_size:,} bytes, "
                              f"more than {limit:,} (a compression bomb: a file of {size:,} bytes does not "
                              "hold that much)")
    out = io.BytesIO()
    try:
        with zipfile.ZipFile(io.BytesIO(data)).open(info) as f:
            while chunk := f.read(min(_OUT_CHUNK, limit - out.tell() + 1)):  # zipfile also stops at file_size
                out.write(chunk)
                if out.tell() > limit:
                    raise _bomb(where, f"zipped file {name!r}", limit, size)
    except WeightFileError:
        raise
    except Exception as exc:  # a bad CRC, a truncated entry, encryption, an unknown compression method…
        raise WeightFileError(f"{where}: the zipped file {name!r} cannot be read ({short_error(exc, 120)})") from None
    return out.getvalue(), info.filename


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        value, pos, shift = value | (byte & 0x7F) << shift, pos + 1, shift + 7
        if byte < 0x80:
            return value, pos
    raise ValueError("not a varint")


def _is_onnx(data: bytes, suffix: str) -> bool:
    """An ONNX ModelProto: ir_version (field 1) first, then well-formed fields up to the graph (field 7)."""
    if data[:1] != b"\x08":
        return False
    try:
        version, pos = _varint(data, 1)
        if not 1 <= version <= 100:
            return False
        if suffix == ".onnx":
            return True
        for _ in range(16):  # producer_name, producer_version, domain, model_version, doc_string come first
            tag, pos = _varint(data, pos)
            field, wire = tag >> 3, tag & 7
            if wire == 0 and field in (5,):
                _value, pos = _varint(data, pos)
            elif wire == 2 and field in (2, 3, 4, 6, 7):
                length, pos = _varint(data, pos)
                if field == 7:
                    return pos + length <= len(data)
                pos += length
            else:
                return False
    except ValueError:
        return False
    return False


def _is_saved_model(data: bytes, suffix: str) -> bool:
    """A TensorFlow SavedModel/GraphDef ``.pb``: protobuf, and a SavedModel's schema version or TF op names."""
    if suffix == ".pb":
        return data[:1] in (b"\x08", b"\x0a")
    head = data[:1 << 20]
    return data[:3] == b"\x08\x01\x12" and any(op in head for op in (b"RestoreV2", b"SaveV2", b"serving_default"))


def _zipped_format(data: bytes, where: str) -> str | None:
    try:
        kind = _classify(_files(data, where))
    except WeightFileError:
        return None  # the caller's zip reader gives the message
    if kind == "keras":
        return (f"{where}: a Keras .keras archive: not supported (its weights are HDF5 inside, and reading them "
                "needs h5py); in Keras, export them with np.savez('weights.npz', W1=..., b1=..., ...) from "
                "model.get_weights(), or convert the model to PyTorch and save a state_dict or .safetensors")
    return _torchscript(where) if kind == "torchscript" else None


def unsupported_format(data: bytes, where: str, suffix: str = "") -> str | None:
    """A one-line message for a format DigitLab knows but does not read (saying what would be needed), else None.

    ``suffix`` is the file name's (``".onnx"``, ``".pb"``): it only settles formats whose bytes alone are
    ambiguous; every other format is told by content.
    """
    suffix = suffix.lower()
    convert = "export the weights as .safetensors, a PyTorch state_dict (.pt) or an .npz of arrays"
    if any(data[at:at + 8] == _HDF5 for at in (0, 512, 1024, 2048)):  # HDF5 may follow a user block
        return (f"{where}: a Keras/HDF5 .h5 file: not supported (reading it needs h5py); in Keras, load the model "
                "and export the weights to .npz with NumPy: np.savez('weights.npz', W1=..., b1=..., ...) from "
                "model.get_weights()")
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _zipped_format(data, where)
    if data[4:8] == b"TFL3":
        return f"{where}: a TensorFlow Lite model: not supported (reading it needs TensorFlow); {convert}"
    if _is_onnx(data, suffix):
        return (f"{where}: an ONNX model: not supported (reading it needs the onnx package); from the framework that "
                f"made it, {convert}")
    if _is_saved_model(data, suffix):
        return (f"{where}: a TensorFlow graph or SavedModel (.pb): not supported (reading it needs TensorFlow); "
                f"{convert}")
    if data[:4] == b"GGUF":
        return f"{where}: a GGUF file (llama.cpp): not supported; {convert}"
    for found, what, command in _PACKED:
        if found(data):
            return f"{where}: {what}: not supported; unpack it first ({command}) and open the weight file inside"
    return None
