"""Write tests/engine/data/hostile_idx/: IDX files that are broken, lie in their header, or are gzip bombs.

Run ``python tests/engine/data/hostile_idx/make_hostile_idx.py`` to regenerate (the output is
deterministic; test_datasets.py checks the committed files are current). Each file is loaded as one
file of a folder of IDX files (``--data-dir``): MANIFEST.json says which ("role"), how many images or
labels the good file beside it holds ("partner"), what the file is ("what") and what must happen
("expect": a phrase of the one-line DatasetError, or "loads" for files that are fine).

Large gzip bombs are not committed: ``write_bomb`` makes one at test time.
"""
from __future__ import annotations

import argparse
import gzip
import json
import struct
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = "MANIFEST.json"
IMAGES, LABELS = 0x0803, 0x0801


def header(code: int, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def images(n: int, rows: int = 28, cols: int = 28) -> bytes:
    """n images of rows x cols unsigned bytes: a diagonal stroke, so they are not all zeros."""
    body = bytes((255 if r == c % rows else 0) for _ in range(n) for r in range(rows) for c in range(cols))
    return header(0x08, (n, rows, cols)) + body


def labels(values) -> bytes:
    values = list(values)
    return header(0x08, (len(values),)) + bytes(values)


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


def zero_members(total: int, member: int = 16 << 20) -> bytes:
    """gzip members inflating to `total` zero bytes: ~1 KB of file per MiB (deflate's ratio is ~1030:1)."""
    one = gz(bytes(member))
    full, rest = divmod(total, member)
    return one * full + (gz(bytes(rest)) if rest else b"")


def bad_crc(data: bytes) -> bytes:
    packed = bytearray(gz(data))
    packed[-8:-4] = struct.pack("<I", (zlib.crc32(data) ^ 0xFFFFFFFF) & 0xFFFFFFFF)
    return bytes(packed)


def named_member(data: bytes, name: bytes) -> bytes:
    """A gzip member whose header carries `name` as the original file name (FNAME), however long."""
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = raw.compress(data) + raw.flush()
    return (b"\x1f\x8b\x08\x08" + bytes(4) + b"\x02\xff" + name + b"\x00" + body
            + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF))


def write_long_name(path: Path, name_bytes: int = 20 << 20) -> Path:
    """A valid gzip file of 3 images whose header's file-name field is `name_bytes` long."""
    path.write_bytes(named_member(images(3), b"A" * name_bytes))
    return path


def write_bomb(path: Path, inflated: int = 1 << 30, declared_images: int = 60_000) -> Path:
    """A gzip file (~1 MB per GiB) whose header declares `declared_images` 28x28 images, then `inflated` zeros."""
    with open(path, "wb") as f:
        f.write(gz(header(0x08, (declared_images, 28, 28))))
        f.write(zero_members(inflated))
    return path


# name: (role, partner count, what, expect, bytes)
CASES = {
    "images-14x56.idx3": ("images", 3, "three 14x56 images: 784 pixels each, the wrong shape",
                          "images are 14×56, DigitLab needs 28×28", images(3, 14, 56)),
    "images-32x32.idx3.gz": ("images", 3, "three 32x32 images (CIFAR/SVHN size)",
                             "images are 32×32, DigitLab needs 28×28", gz(images(3, 32, 32))),
    "images-1x784.idx3": ("images", 2, "two images stored as one row of 784 pixels",
                          "images are 1×784, DigitLab needs 28×28", images(2, 1, 784)),
    "images-empty.idx3.gz": ("images", 0, "a valid header for 0 images of 28x28",
                             "holds no images (the header says 0)", gz(header(0x08, (0, 28, 28)))),
    "labels-empty.idx1": ("labels", 3, "a valid header for 0 labels beside 3 images",
                          "holds no labels (the header says 0)", header(0x08, (0,))),
    "labels-too-few.idx1.gz": ("labels", 3, "2 labels beside 3 images", "holds 3 images but",
                               gz(labels([1, 2]))),
    "labels-too-many.idx1": ("labels", 3, "4 labels beside 3 images", "holds 4 labels", labels([1, 2, 3, 4])),
    "labels-out-of-range.idx1": ("labels", 3, "labels 3, 10, 255 for ten classes",
                                 "label 10 at index 1 is out of range 0-9 (2 such labels)", labels([3, 10, 255])),
    "images-with-labels-magic.idx3": ("images", 3, "a labels file (magic 0x801) where images belong",
                                      "expected IDX images (magic 0x00000803", labels([1, 2, 3])),
    "labels-with-images-magic.idx1": ("labels", 3, "an images file (magic 0x803) where labels belong",
                                      "expected IDX labels (magic 0x00000801", images(3)),
    "labels-2-dims.idx1": ("labels", 3, "labels stored as a 3x1 matrix",
                           "found magic 0x00000802 (uint8 data, 2 dimensions)", header(0x08, (3, 1)) + bytes([1, 2, 3])),
    "images-float32.idx3": ("images", 1, "one 28x28 image of float32 pixels (type code 0x0D)",
                            "found magic 0x00000D03 (float32 data, 3 dimensions)",
                            header(0x0D, (1, 28, 28)) + bytes(4 * 784)),
    "images-unknown-type.idx3": ("images", 3, "type code 0x07, which IDX does not define",
                                 "unknown IDX data type code 0x07", header(0x07, (3, 28, 28)) + bytes(3 * 784)),
    "images-4-dims.idx3": ("images", 3, "images with a fourth (channel) dimension",
                           "found magic 0x00000804 (uint8 data, 4 dimensions)",
                           header(0x08, (3, 28, 28, 1)) + bytes(3 * 784)),
    "images-truncated.idx3.gz": ("images", 3, "header for 3 images, data for 1,000 bytes",
                                 "truncated: header declares shape (3, 28, 28) (2,352 bytes of data) but only 1,000",
                                 gz(header(0x08, (3, 28, 28)) + bytes(1000))),
    "images-header-only.idx3": ("images", 3, "header for 3 images and no data",
                                "but only 0 bytes follow", header(0x08, (3, 28, 28))),
    "images-trailing-garbage.idx3": ("images", 3, "3 good images then 10 bytes more",
                                     "but more data follows", images(3) + b"0123456789"),
    "images-huge-count.idx3": ("images", 3, "header claiming 4,000,000,000 images, no data",
                               "header declares 4,000,000,000 images; refusing more than 250,000",
                               header(0x08, (4_000_000_000, 28, 28))),
    "images-max-dims.idx3.gz": ("images", 3, "header claiming 1 image of 4294967295x4294967295",
                                "images are 4294967295×4294967295, DigitLab needs 28×28",
                                gz(header(0x08, (1, 0xFFFFFFFF, 0xFFFFFFFF)))),
    "images-short-header.idx3": ("images", 3, "only 6 bytes: the dimension sizes are cut",
                                 "truncated header", header(0x08, (3, 28, 28))[:6]),
    "images-empty-file.idx3": ("images", 3, "a file of 0 bytes", "truncated header", b""),
    "images-not-idx.idx3": ("images", 3, "a PNG signature and chunk, not IDX",
                            "not an IDX file (magic number starts 8950", b"\x89PNG\r\n\x1a\n" + bytes(40)),
    "images-gzip-cut.idx3.gz": ("images", 3, "a gzip stream cut after 30 of its 56 bytes", "corrupt or truncated gzip data",
                                gz(images(3))[:30]),
    "images-gzip-junk.idx3.gz": ("images", 3, "the gzip magic number followed by junk",
                                 "corrupt or truncated gzip data", b"\x1f\x8b" + bytes(range(200))),
    "images-gzip-bad-crc.idx3.gz": ("images", 3, "a complete gzip stream whose CRC-32 is wrong",
                                    "corrupt or truncated gzip data", bad_crc(images(3))),
    "images-gzip-then-junk.idx3.gz": ("images", 3, "a good gzip member, then junk after it",
                                      "corrupt or truncated gzip data", gz(images(3)) + b"junk after the end"),
    "images-bomb-32mib.idx3.gz": ("images", 3, "header for 3 images, then 32 MiB of zeros in ~33 KB",
                                  "but more data follows",
                                  gz(images(3)) + zero_members(32 << 20, member=1 << 20)),
    "images-gzip-long-name.idx3.gz": ("images", 3, "3 good images in a gzip member with a 16 KB file name",
                                      "loads", named_member(images(3), b"N" * 16384)),
    "images-two-members.idx3.gz": ("images", 3, "3 good images split over two gzip members (valid gzip)",
                                   "loads", gz(images(3)[:1000]) + gz(images(3)[1000:])),
    "labels-two-members.idx1.gz": ("labels", 3, "3 good labels split over two gzip members (valid gzip)",
                                   "loads", gz(labels([7, 8, 9])[:5]) + gz(labels([7, 8, 9])[5:])),
}


def build(folder: Path = HERE) -> list[str]:
    """Write every case and MANIFEST.json into `folder`; returns the file names."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for name, (role, partner, what, expect, data) in CASES.items():
        (folder / name).write_bytes(data)
        manifest[name] = {"what": what, "expect": expect, "role": role, "partner": partner}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return sorted(CASES)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write (default: beside this script)")
    print(f"wrote {len(build(parser.parse_args().out))} files")
