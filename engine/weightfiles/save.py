"""Save a network's weights atomically: DigitLab's ``.npz`` (arrays + spec JSON), the book's ``.pkl``, or for
PyTorch users a state_dict ``.pt`` (written without torch) or ``.safetensors``, both loadable into the equivalent
``nn.Sequential`` (:func:`engine.weightfiles.state_dict.to_torch`) and carrying DigitLab's description too."""
from __future__ import annotations

import json
import os
import pickle
import pickletools
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from engine.errors import WeightFileError
from engine.nn.network import Network
from engine.util import WriteError, atomic_write, check_can_write, printable, to_jsonable
from engine.weightfiles.metadata import parse_metadata
from engine.weightfiles.read import FORMAT_NAME, METADATA_KEY, SAFETENSORS_KEY
from engine.weightfiles.safetensors_io import write_safetensors
from engine.weightfiles.state_dict import to_torch
from engine.weightfiles.torch_write import write_torch_state_dict

FORMAT_VERSION = 1
SUFFIX_FORMATS = {".npz": "npz", ".pkl": "pickle", ".pickle": "pickle", ".pt": "torch", ".pth": "torch",
                  ".safetensors": "safetensors"}
FORMATS = ("npz", "pickle", "torch", "safetensors")


def _version() -> str:
    try:
        return version("digitlab")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _write_npz(f, params: dict[str, np.ndarray], meta_json: str) -> None:
    np.savez_compressed(f, **params, **{METADATA_KEY: np.array(meta_json)})


def _write_pickle(f, params: dict[str, np.ndarray]) -> None:
    # numpy 1.x and 2.x both read numpy.core.* names, numpy 1.x cannot read numpy._core.*
    f.write(rename_globals(pickle.dumps(params, protocol=4)))


def _save(path: Path, write) -> None:
    try:
        atomic_write(path, write, what="weights")
    except WriteError as exc:  # "PATH: cannot save weights: the disk is full …; nothing was written …"
        raise WeightFileError(str(exc)) from exc


def save_format(path: str | os.PathLike, format: str | None = None) -> str:
    """The format to save in, "npz" or "pickle": ``format`` if given, else from the suffix (``SUFFIX_FORMATS``)."""
    if format is not None:
        if format not in FORMATS:
            raise WeightFileError(f"{printable(path)}: unknown weight format {printable(repr(format))}: "
                                  f"use one of {', '.join(repr(f) for f in FORMATS)}")
        return format
    suffix = Path(path).suffix
    if suffix.lower() not in SUFFIX_FORMATS:
        raise WeightFileError(f"{printable(path)}: unknown weight file suffix {printable(repr(suffix or '(none)'))}: "
                              "use .npz (DigitLab's format), .pkl/.pickle (the book's), .pt/.pth (a PyTorch "
                              "state_dict) or .safetensors")
    return SUFFIX_FORMATS[suffix.lower()]


def check_save_path(path: str | os.PathLike, format: str | None = None) -> str:
    """Before any work is done: the format to save ``path`` in, or WeightFileError saying why it cannot be saved there.

    Checks the suffix (or ``format``), that the folder exists and is writable, and that ``path`` is
    not a folder or a device. A symbolic link is checked (and later written) through to its target.
    """
    text = os.fspath(path)
    if not text.strip():
        raise WeightFileError("no file name given to save the weights to")
    if text.endswith((os.sep, "/")):  # Path() would drop the slash and write a file where a folder was meant
        raise WeightFileError(f"{printable(text)}: names a folder (it ends in '/'); give a file name such as "
                              f"{printable(text)}weights.npz")
    fmt = save_format(path, format)
    try:
        check_can_write(path, what="weights")
    except WriteError as exc:
        raise WeightFileError(str(exc)) from None
    return fmt


def save_weights(network: Network, path: str | os.PathLike, format: str | None = None,
                 metadata: dict | None = None) -> Path:
    """Save ``network`` as ``.npz`` (DigitLab: arrays + spec JSON), ``.pkl`` (the book's plain params dict), ``.pt``
    or ``.safetensors`` (a PyTorch state_dict of the equivalent ``nn.Sequential``, taking pixels in [0, 1]).

    The format follows the suffix unless given. The write is atomic, the new file gets the
    permissions an editor would give it (the replaced file's, or 0666 minus the umask), and a save
    to a symbolic link writes the file it points to. A failure raises :class:`WeightFileError`
    saying why in plain words ("the disk is full") and leaves any existing file untouched.
    """
    path = Path(path)
    fmt = save_format(path, format)
    params = {k: np.ascontiguousarray(v) for k, v in network.params.items()}
    for k, v in params.items():
        bad = int(v.size - np.count_nonzero(np.isfinite(v)))
        if bad:
            raise WeightFileError(f"not saving to {printable(path)}: {k} holds {bad} NaN or infinite values (the "
                                  "network diverged), and such a file could not be loaded")
    if fmt == "pickle":
        _save(path, lambda f: _write_pickle(f, params))
        return path
    spec, state = network.spec(), None
    if fmt in ("torch", "safetensors"):
        # the scale, shift and the book's inference dropout folded into the weights; the stored spec is the network's
        # own, which engine.weightfiles.state_dict.from_stored_spec unfolds again when DigitLab reads the file back
        state, module = to_torch(network)
    meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "digitlab_version": _version(),
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "spec": spec,
            "info": network.info, "training": metadata or {}}
    if state is not None:
        meta["torch_module"] = module
    try:
        meta_json = json.dumps(to_jsonable(meta), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise WeightFileError(f"not saving to {printable(path)}: the metadata cannot be stored as JSON ({exc})") \
            from None
    try:  # the reader's limits (size, depth, number lengths): never write a file DigitLab would refuse
        parse_metadata(meta_json, "the file", METADATA_KEY)
    except WeightFileError as exc:
        raise WeightFileError(f"not saving to {printable(path)}: it could not be read back: {exc}") from None
    if fmt == "npz":
        _save(path, lambda f: _write_npz(f, params, meta_json))
    elif fmt == "torch":
        _save(path, lambda f: write_torch_state_dict(f, state, meta_json))
    else:
        _save(path, lambda f: write_safetensors(f, state, {"format": "pt", SAFETENSORS_KEY: meta_json}))
    return path


# ----- writing pickles numpy 1.x can read -----
_NUMPY1_MODULES = {"numpy._core": "numpy.core"}


def _rename_module(module: str, mapping: dict[str, str]) -> str:
    for old, new in mapping.items():
        if module == old or module.startswith(old + "."):
            return new + module[len(old):]
    return module


def rename_globals(data: bytes, mapping: dict[str, str] | None = None) -> bytes:
    """Rewrite the module names a pickle refers to, e.g. ``numpy._core`` -> ``numpy.core`` (the default).

    numpy 2 writes ``numpy._core.multiarray._reconstruct``; numpy 1.x only knows
    ``numpy.core.multiarray`` and numpy 2 still loads that name, so a renamed
    pickle loads in both. FRAME opcodes are dropped (their lengths would be
    wrong after renaming; frames are optional).
    """
    mapping = dict(mapping or _NUMPY1_MODULES)
    ops = list(pickletools.genops(data))
    out = bytearray()
    for i, (op, arg, pos) in enumerate(ops):
        end = ops[i + 1][2] if i + 1 < len(ops) else len(data)
        raw = data[pos:end]
        if op.name == "FRAME":
            continue
        if op.name in ("GLOBAL", "INST"):
            module, name = arg.split(" ", 1)
            renamed = _rename_module(module, mapping)
            if renamed != module:
                raw = raw[:1] + f"{renamed}\n{name}\n".encode() + (raw[raw.index(b"\n", raw.index(b"\n") + 1) + 1:])
        elif op.name in ("SHORT_BINUNICODE", "BINUNICODE") and isinstance(arg, str):
            renamed = _rename_module(arg, mapping)
            if renamed != arg:
                body = renamed.encode("utf-8")
                if op.name == "SHORT_BINUNICODE" and len(body) < 256:
                    raw = b"\x8c" + bytes([len(body)]) + body
                else:
                    raw = b"X" + len(body).to_bytes(4, "little") + body
        out += raw
    return bytes(out)
