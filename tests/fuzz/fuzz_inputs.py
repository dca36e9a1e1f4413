"""Real files to start from (weights, IDX, images) and hypothesis strategies that mutate them.

Byte-level mutations: bit flips, byte sets, truncation, chunk duplication and deletion, insertions,
edits of length fields found by parsing the seed (pickle opcode arguments, zip headers and
end-of-central-directory counts, IDX dimensions, PNG chunk lengths), and splicing two seeds.
Structure-aware ones reach past checksums and compression: an ``.npz`` rebuilt with a mutated member
(``.npy`` header, metadata JSON with numbers swapped for extreme ones or nested deep), gzipped IDX
recompressed after mutating the raw IDX, PNG header fields with a valid CRC.
"""
from __future__ import annotations

import gzip
import io
import json
import lzma
import pickle
import pickletools
import struct
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from engine.data.idx import write_idx
from engine.nn.models import make_cnn, small_cnn_spec
from engine.nn.network import make_mlp
from engine.weightfiles.save import rename_globals, save_weights

EXTREME_NUMBERS = [0, -1, 1, 3, 1000, 65536, 10**9, 10**18, 2.5, float("inf"), float("nan"), 1e-300, None, True, "x",
                   [], {}]
LENGTH_VALUES = [0, 1, 0x7F, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]


class TwoLayerNet:
    """Stand-ins for the book's classes, pickled under ``__main__`` as the book's scripts do."""


class Affine:
    pass


class Relu:
    pass


# ----------------------------------------------------------------------------- seeds

def _digit_image(size: tuple[int, int], mode: str) -> Image.Image:
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.line([(w * 0.3, h * 0.2), (w * 0.7, h * 0.2), (w * 0.45, h * 0.85)], fill=0, width=max(2, w // 10))
    return image.convert(mode)


def _image_bytes(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _book_object_pickle(params: dict, protocol: int) -> bytes:
    net = TwoLayerNet()
    net.params = params
    net.layers = OrderedDict()
    for i, layer in enumerate((Affine(), Relu(), Affine()), start=1):
        if isinstance(layer, Affine):
            layer.W, layer.b = params[f"W{(i + 1) // 2}"], params[f"b{(i + 1) // 2}"]
        net.layers[f"{type(layer).__name__}{i}"] = layer
    return rename_globals(pickle.dumps(net, protocol=protocol), {__name__: "__main__"})


def big_png(side: int) -> bytes:
    """A greyscale PNG of side×side pixels, all white, a few hundred KB (a decompression bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer = zlib.compressobj(9)
    row = b"\0" + b"\xff" * side
    body = b"".join(packer.compress(row * 256) for _ in range(side // 256)) + packer.compress(row * (side % 256))
    body += packer.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def make_seeds(folder: Path) -> dict[str, dict[str, bytes]]:
    """Legitimate files of every kind the app opens, by kind ('weights', 'idx', 'image'), name -> bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    mlp = make_mlp([784, 8, 10], "relu", seed=1)
    weights = {"mlp.npz": save_weights(mlp, folder / "mlp.npz").read_bytes(),
               "cnn.npz": save_weights(make_cnn(small_cnn_spec(), seed=3), folder / "cnn.npz").read_bytes(),
               "book.pkl": save_weights(mlp, folder / "book.pkl").read_bytes()}
    params = {k: np.asarray(v) for k, v in mlp.params.items()}
    for protocol in range(6):
        weights[f"dict-protocol{protocol}.pkl"] = pickle.dumps(params, protocol=protocol)
    weights["book-object-protocol2.pkl"] = _book_object_pickle(params, 2)
    weights["book-object-protocol4.pkl"] = _book_object_pickle(params, 4)
    weights["fortran-bigendian.pkl"] = pickle.dumps({k: np.asfortranarray(v.astype(">f8")) for k, v in params.items()},
                                                    protocol=2)
    # issue 14's formats: PyTorch zip, safetensors (both as DigitLab writes them), compressed and zipped pickles
    weights["mlp.pt"] = save_weights(mlp, folder / "mlp.pt").read_bytes()
    weights["cnn.safetensors"] = save_weights(make_cnn(small_cnn_spec(), seed=3), folder / "cnn.safetensors").read_bytes()
    weights["book.pkl.gz"] = gzip.compress(weights["book.pkl"], mtime=0)
    weights["book.pkl.xz"] = lzma.compress(weights["book.pkl"])
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 20, dtype=np.uint8)
    idx = {}
    for name, array in (("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)):
        for suffix in ("", ".gz"):
            idx[name + suffix] = write_idx(folder / (name + suffix), array).read_bytes()
    digit = _digit_image((60, 80), "L")
    pictures = {"digit.png": _image_bytes(digit, "PNG"), "digit-rgba.png": _image_bytes(digit.convert("RGBA"), "PNG"),
                "digit-16bit.png": _image_bytes(digit.convert("I;16"), "PNG"),
                "digit-palette.png": _image_bytes(digit.convert("P"), "PNG", transparency=0),
                "digit.jpg": _image_bytes(digit.convert("RGB"), "JPEG"), "digit.bmp": _image_bytes(digit, "BMP"),
                "digit.gif": _image_bytes(digit, "GIF"), "digit.tif": _image_bytes(digit, "TIFF"),
                "digit.pgm": _image_bytes(digit, "PPM"), "digit.webp": _image_bytes(digit, "WEBP"),
                "digit.eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n0 0 moveto 28 28 lineto stroke\n",
                "tall.png": big_png(10_000)}
    return {"weights": weights, "idx": idx, "image": pictures}


# ----------------------------------------------------------------------------- where the length fields are

def length_fields(data: bytes) -> list[tuple[int, int, str]]:
    """(offset, size in bytes, struct byte order) of the fields in ``data`` that hold a length or a count."""
    if data[:4] == b"PK\x03\x04":
        return _zip_fields(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png_fields(data)
    if data[:2] == b"\0\0" and len(data) >= 4:
        return [(4 + 4 * i, 4, ">") for i in range(min(data[3], (len(data) - 4) // 4))]
    return _pickle_fields(data)


def _zip_fields(data: bytes) -> list[tuple[int, int, str]]:
    fields = []
    for sig, offsets in ((b"PK\x03\x04", ((18, 4), (22, 4), (26, 2), (28, 2))),
                         (b"PK\x01\x02", ((20, 4), (24, 4), (28, 2), (42, 4))),
                         (b"PK\x05\x06", ((8, 2), (10, 2), (12, 4), (16, 4)))):
        at = data.find(sig)
        while at >= 0:
            fields += [(at + o, n, "<") for o, n in offsets if at + o + n <= len(data)]
            at = data.find(sig, at + 4)
    return fields


def _png_fields(data: bytes) -> list[tuple[int, int, str]]:
    fields, at = [], 8
    while at + 8 <= len(data):
        fields.append((at, 4, ">"))
        at += 12 + struct.unpack(">I", data[at:at + 4])[0]
    return fields + [(16, 4, ">"), (20, 4, ">")]


_PICKLE_ARG_SIZES = {"BINBYTES": 4, "SHORT_BINBYTES": 1, "BINUNICODE": 4, "SHORT_BINUNICODE": 1, "FRAME": 8,
                     "BININT1": 1, "BININT2": 2, "BININT": 4, "BINPUT": 1, "BINGET": 1, "LONG_BINPUT": 4, "LONG1": 1,
                     "BYTEARRAY8": 8, "BINUNICODE8": 8, "BINBYTES8": 8}


def _pickle_fields(data: bytes) -> list[tuple[int, int, str]]:
    fields = []
    try:
        for op, _arg, pos in pickletools.genops(data):
            if op.name in _PICKLE_ARG_SIZES:
                fields.append((pos + 1, _PICKLE_ARG_SIZES[op.name], "<"))
    except Exception:  # noqa: BLE001 — a mutated seed may not parse; use what was found
        pass
    return fields


def _set_field(data: bytearray, field: tuple[int, int, str], value: int) -> None:
    at, size, order = field
    data[at:at + size] = (value % (1 << (8 * size))).to_bytes(size, "big" if order == ">" else "little")


# ----------------------------------------------------------------------------- structure-aware mutations

def _mutate_json(meta, path: list[int], replacement):
    """``meta`` with the node that ``path`` picks (index into the sorted children at each level) replaced."""
    if not path or not isinstance(meta, (dict, list)) or not meta:
        return replacement
    keys = sorted(meta, key=str) if isinstance(meta, dict) else list(range(len(meta)))
    key = keys[path[0] % len(keys)]
    meta[key] = _mutate_json(meta[key], path[1:], replacement)
    return meta


@st.composite
def npz_rebuilt(draw, data: bytes) -> bytes:
    """The zip rebuilt with one member changed: its metadata JSON, its .npy header, or its data."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    metadata = [m for m in members if m.startswith("__digitlab__")]
    if metadata and draw(st.booleans()):
        target = draw(st.sampled_from(metadata))
    else:
        target = draw(st.sampled_from(sorted(members)))
    body = members[target]
    if target.startswith("__digitlab__"):
        array = np.load(io.BytesIO(body), allow_pickle=False)
        meta = json.loads(str(array[()]))
        how = draw(st.sampled_from(["spec", "number", "spec", "deep", "long-text"]))
        if how == "spec" and isinstance(meta.get("spec"), dict) and meta["spec"].get("layers"):
            layers = meta["spec"]["layers"]
            layer = layers[draw(st.integers(0, len(layers) - 1))]
            field = draw(st.sampled_from(["pad", "stride", "size", "filters", "channels", "in", "out", "type",
                                          "input_scale", "input_shape"]))
            value = draw(st.sampled_from(EXTREME_NUMBERS + [[1, 28, 28], [3, 1000, 1000], "conv", "pool"]))
            (meta["spec"] if field.startswith("input") else layer)[field] = value
            text = json.dumps(meta).replace("Infinity", draw(st.sampled_from(["Infinity", "1e400"])))
        elif how == "deep":
            text = json.dumps(meta)[:-1] + ', "x": ' + "[" * draw(st.sampled_from([50, 1000, 100_000])) + "]}"
        else:
            value = "\x1b[31m" + "A" * 5_000_000 if how == "long-text" else draw(st.sampled_from(EXTREME_NUMBERS))
            path = draw(st.lists(st.integers(0, 50), min_size=1, max_size=6))
            text = json.dumps(_mutate_json(meta, path, value)).replace("Infinity", draw(st.sampled_from(
                ["Infinity", "1e400"])))
        out = io.BytesIO()
        np.save(out, np.array(text), allow_pickle=False)
        body = out.getvalue()
    else:
        size = struct.unpack("<H", body[8:10])[0]  # savez writes .npy format 1.0: a 2-byte header length
        header = body[10:10 + size].decode("latin1").rstrip()
        swap = draw(st.sampled_from([("'<f4'", "'|O'"), ("'<f4'", "'V8'"), ("'<f4'", "'<U5'"), ("False", "True"),
                                     ("(", "(100000000, "), ("(", "(0, "), ("'<f4'", "[('a', '<f4')]"),
                                     ("'<f4'", "'>f8'"), ("(", "(-1, ")]))
        header = header.replace(*swap) + "\n"
        body = body[:8] + struct.pack("<H", len(header)) + header.encode("latin1") + body[10 + size:]
    members[target] = body
    out = io.BytesIO()
    compression = draw(st.sampled_from([zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED]))
    with zipfile.ZipFile(out, "w", compression) as zf:
        for member, content in members.items():
            zf.writestr(member, content)
    return out.getvalue()


@st.composite
def png_header_edit(draw, data: bytes) -> bytes:
    """IHDR width/height/depth/colour type changed, its CRC fixed so the decoder reads on."""
    out = bytearray(data)
    offset, size = draw(st.sampled_from([(16, 4), (20, 4), (24, 1), (25, 1), (28, 1)]))
    value = draw(st.sampled_from([0, 1, 16, 255, 13000, 65535, 0x7FFFFFFF]))
    out[offset:offset + size] = (value % (1 << (8 * size))).to_bytes(size, "big")
    out[29:33] = struct.pack(">I", zlib.crc32(bytes(out[12:29])))
    return bytes(out)


# ----------------------------------------------------------------------------- byte-level mutations

@st.composite
def byte_mutations(draw, data: bytes, others: list[bytes]) -> bytes:
    out = bytearray(data)
    fields = length_fields(data)
    for _ in range(draw(st.integers(1, 4))):
        n = max(len(out), 1)
        how = draw(st.sampled_from(["flip", "set", "truncate", "duplicate", "delete", "insert", "length", "length",
                                    "splice"]))
        if how == "flip" and out:
            at = draw(st.integers(0, n - 1))
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif how == "set" and out:
            out[draw(st.integers(0, n - 1))] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]))
        elif how == "truncate":
            del out[draw(st.integers(0, n)):]
        elif how == "duplicate":
            start = draw(st.integers(0, n))
            chunk = out[start:start + draw(st.integers(1, 4096))]
            at = draw(st.integers(0, n))
            out[at:at] = chunk * draw(st.sampled_from([1, 2, 100, 10_000]))
        elif how == "delete":
            start = draw(st.integers(0, n))
            del out[start:start + draw(st.integers(1, 4096))]
        elif how == "insert":
            at = draw(st.integers(0, n))
            out[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif how == "length" and fields:
            field = draw(st.sampled_from(fields))
            if field[0] + field[1] <= len(out):
                old = int.from_bytes(out[field[0]:field[0] + field[1]], "big" if field[2] == ">" else "little")
                _set_field(out, field, draw(st.sampled_from(LENGTH_VALUES + [old + 1, old - 1, old * 1000])))
        elif how == "splice" and others:
            other = draw(st.sampled_from(others))
            out = out[:draw(st.integers(0, n))] + other[draw(st.integers(0, len(other))):]
    return bytes(out)


@st.composite
def mutated_files(draw, seeds: dict[str, bytes]) -> tuple[str, bytes]:
    """(seed name, bytes): a seed of one kind, mutated structurally and/or byte by byte."""
    by_format: dict[str, list[str]] = {}
    for seed_name in sorted(seeds):  # each format equally often, however many seeds it has
        by_format.setdefault(Path(seed_name).suffix, []).append(seed_name)
    seed = draw(st.sampled_from(draw(st.sampled_from(sorted(by_format.items())))[1]))
    data = seeds[seed]
    if data[:4] == b"PK\x03\x04" and seed.endswith(".npz") and draw(st.booleans()):
        data = draw(npz_rebuilt(data))
    elif data[:2] == b"\x1f\x8b" and draw(st.booleans()):
        raw = gzip.decompress(data)
        data = gzip.compress(draw(byte_mutations(raw, [])), mtime=0)
    elif data[:8] == b"\x89PNG\r\n\x1a\n" and draw(st.booleans()):
        data = draw(png_header_edit(data))
    if data == seeds[seed] or draw(st.integers(0, 3)) == 0:  # on top of a structural change, now and then
        data = draw(byte_mutations(data, [v for k, v in seeds.items() if k != seed]))
    return seed, data
