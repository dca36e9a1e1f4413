"""Read a PyTorch ``.pt``/``.pth`` file without torch: its state_dict as NumPy arrays, nothing from it run.

:func:`read_torch` opens either container (:mod:`engine.weightfiles.torch_archive`), unpickles with torch's
tensor names mapped to NumPy (:mod:`engine.weightfiles.torch_pickle`), then finds the state_dict in
whatever ``torch.save`` was given:

1. a state_dict itself (a dict of tensors keyed by dotted names: ``0.weight``, ``fc1.bias``…);
2. a checkpoint dict holding one under ``state_dict``, ``model_state_dict``, ``model``, ``net``… (epochs,
   optimizer states and other entries are inert data, skipped and named in the notes);
3. a whole pickled ``nn.Module`` (``torch.save(model)``): its classes are inert stand-ins, never imported;
   parameters and persistent buffers are collected from ``_parameters``/``_buffers``/``_modules`` in the
   order ``model.state_dict()`` gives them.

Arrays keep torch's layout (a Linear weight is ``(out, in)``); buffers (``running_mean``,
``num_batches_tracked``…) are included; the recogniser decides what to do with them.

For the integrator's dispatcher: a zip is a torch file when :func:`is_torch_zip` holds for its member
names (else an ``.npz``); a pickle is a legacy torch file when :func:`is_legacy_torch` holds for its bytes.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from engine.errors import WeightFileError
from engine.util import printable
from engine.weightfiles.metadata import MAX_SHOWN_ITEMS, parse_metadata
from engine.weightfiles.pickle_names import ArrayBuilder
from engine.weightfiles.pickle_objects import StandIn, class_names, reachable
from engine.weightfiles.pickle_scan import MAX_DEPTH, MAX_OBJECTS
from engine.weightfiles.text import names
from engine.weightfiles.torch_archive import is_legacy_torch, is_torch_zip, load_torch_legacy, load_torch_zip

__all__ = ["CHECKPOINT_KEYS", "TorchFile", "is_legacy_torch", "is_torch_zip", "read_torch"]

CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "model_state", "weights", "params")
METADATA_KEY = "digitlab"  # in the state_dict's _metadata: {"digitlab": {"json": "<DigitLab's metadata>"}}


@dataclass
class TorchFile:
    """A PyTorch file's state_dict (torch layout, the file's order) and what else the file said."""

    kind: str
    params: dict[str, np.ndarray]
    metadata: dict = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_torch(data: bytes, where: str) -> TorchFile:
    """The state_dict in a ``torch.save`` file (zip or legacy format); :class:`WeightFileError` saying why not."""
    if is_legacy_torch(data):
        loaded, fmt = load_torch_legacy(data, where), "legacy format"
    else:
        loaded, fmt = load_torch_zip(data, where), "zip format"
    obj = loaded.obj
    classes = class_names(reachable(obj), MAX_SHOWN_ITEMS)
    notes: list[str] = []
    if _is_state_dict(obj):
        params, kind = _tensors(obj, notes), f"PyTorch state_dict ({fmt})"
    elif _is_module(obj):
        params, kind = _module_params(obj, where), f"PyTorch whole module {_name(obj)} ({fmt})"
    elif isinstance(obj, dict):
        params, kind = _from_checkpoint(obj, where, fmt, notes)
    else:
        raise WeightFileError(f"{where}: a PyTorch file holding {_a(_type_name(obj))}, not a state_dict: no dict of "
                              "tensors, checkpoint or module was found")
    if not params:
        raise WeightFileError(f"{where}: a PyTorch file holding an empty state_dict: no tensors")
    return TorchFile(kind, params, _metadata(params, loaded.metadata, where), classes, notes)


# ----- what the file holds
def _is_state_dict(obj) -> bool:
    """A dict keyed by names whose values are mostly tensors (a state_dict may hold an ``_extra_state``)."""
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) for k in obj):
        return False
    return 2 * sum(isinstance(v, np.ndarray) for v in obj.values()) > len(obj)


def _is_module(obj) -> bool:
    attrs = obj.attributes if isinstance(obj, StandIn) else {}
    return isinstance(attrs.get("_parameters"), dict) and isinstance(attrs.get("_modules"), dict)


def _tensors(state: dict, notes: list[str]) -> dict[str, np.ndarray]:
    others = [k for k, v in state.items() if not isinstance(v, np.ndarray)]
    if others:
        notes.append(f"ignored entries that are not tensors: {names(others)}")
    return {k: v for k, v in state.items() if isinstance(v, np.ndarray)}


def _from_checkpoint(obj: dict, where: str, fmt: str, notes: list[str]) -> tuple[dict, str]:
    """The state_dict under the first conventional key (else the only other entry holding one); the rest noted."""
    candidates = [k for k in CHECKPOINT_KEYS if k in obj] + [k for k in obj if k not in CHECKPOINT_KEYS]
    for key in candidates:
        value = obj[key]
        if _is_state_dict(value):
            params, kind = _tensors(value, notes), f"PyTorch checkpoint, state_dict under {_quote(key)} ({fmt})"
        elif _is_module(value):
            params = _module_params(value, where)
            kind = f"PyTorch checkpoint, whole module {_name(value)} under {_quote(key)} ({fmt})"
        else:
            continue
        skipped = [k for k in obj if k != key]
        if skipped:
            notes.insert(0, "skipped " + ", ".join(_quote(k) for k in skipped[:MAX_SHOWN_ITEMS])
                         + (f", … ({len(skipped) - MAX_SHOWN_ITEMS:,} more)" if len(skipped) > MAX_SHOWN_ITEMS else ""))
        return params, kind
    raise WeightFileError(f"{where}: a PyTorch file holding {_a(_type_name(obj))}, not a state_dict: its entries "
                          f"({names(obj)}) hold no dict of tensors or module")


def _module_params(root: StandIn, where: str) -> dict[str, np.ndarray]:
    """``model.state_dict()`` of a pickled module: own parameters, persistent buffers, then children, in order."""
    params: dict[str, np.ndarray] = {}
    visits = 0

    def visit(module: StandIn, prefix: str, ancestors: tuple) -> None:
        nonlocal visits
        visits += 1
        if visits > MAX_OBJECTS or len(ancestors) > MAX_DEPTH:  # shared submodules could multiply without end
            raise WeightFileError(f"{where}: the pickled module nests or repeats its submodules too often")
        attrs = module.attributes
        skip = attrs.get("_non_persistent_buffers_set")
        skip = skip if isinstance(skip, (set, frozenset)) else set()
        for group in ("_parameters", "_buffers"):
            entries = attrs.get(group)
            for name, value in (entries.items() if isinstance(entries, dict) else ()):
                if value is None or (group == "_buffers" and name in skip):
                    continue
                if not isinstance(value, np.ndarray):
                    raise WeightFileError(f"{where}: {printable(prefix + str(name), 80)} in the pickled module is a "
                                          f"{_type_name(value)}, not a tensor")
                params[prefix + str(name)] = value
        for name, child in attrs["_modules"].items():
            if child is None:
                continue
            if not _is_module(child):
                raise WeightFileError(f"{where}: submodule {printable(prefix + str(name), 80)} of the pickled module "
                                      f"is a {_type_name(child)}, not a module")
            if any(child is a for a in ancestors):
                raise WeightFileError(f"{where}: the pickled module contains itself")
            visit(child, f"{prefix}{name}.", ancestors + (child,))

    visit(root, "", (root,))
    return params


# ----- DigitLab's metadata in the state_dict's _metadata
def _metadata(params: dict, registry: list, where: str) -> dict:
    """The ``digitlab`` JSON of the ``_metadata`` BUILD on the OrderedDict that became ``params``, else {}."""
    for raw, meta in registry:
        if len(raw) < len(params) or not all(_built(raw.get(k)) is v for k, v in params.items()):
            continue
        entry = meta.get(METADATA_KEY) if isinstance(meta, dict) else None
        if entry is None:
            return {}
        text = entry.get("json") if isinstance(entry, dict) else None
        if not isinstance(text, str):
            raise WeightFileError(f"{where}: the state_dict's _metadata has a {METADATA_KEY!r} entry without a "
                                  "'json' string")
        return parse_metadata(text, where, METADATA_KEY)
    return {}


def _built(value):
    return value.array if isinstance(value, ArrayBuilder) else value


# ----- names for messages
def _a(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _name(obj: StandIn) -> str:
    return printable(obj.qualified_name, 120)


def _quote(key) -> str:
    return repr(printable(key, 60)) if isinstance(key, str) else names([key])


def _type_name(obj) -> str:
    if isinstance(obj, StandIn):
        return _name(obj)
    if isinstance(obj, np.ndarray):
        return f"single tensor of shape {obj.shape}"
    return "OrderedDict" if isinstance(obj, Mapping) and type(obj).__name__ == "OrderedDict" else type(obj).__name__
