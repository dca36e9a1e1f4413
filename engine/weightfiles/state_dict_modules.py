"""The Linear and Conv2d layers of a PyTorch-style state_dict, grouped by module path and put in order.

Keys are ``<module path>.<leaf>``; a layer is a path with a ``weight`` (and usually a ``bias``).
State_dicts keep the order the modules were registered in, but safetensors files store keys
sorted alphabetically (``classifier.*`` before ``features.*``) and layers may be renamed, so the
order is the file's when the shapes chain, else the names' (numbers compared as numbers), else
any order in which they chain. Layers DigitLab cannot run are refused, named with their shapes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from engine.errors import WeightFileError
from engine.weightfiles.architectures import INPUT_PIXELS
from engine.weightfiles.state_dict_layouts import MAX_KERNEL, SIDE
from engine.weightfiles.text import describe_key, names

MAX_MODULES = 100  # Linear and Conv2d layers in one file (spec_check allows 100 layers in all)
SEARCH_BUDGET = 20_000  # orderings tried when neither the file's order nor the names' order chains
BATCHNORM_LEAVES = ("running_mean", "running_var", "num_batches_tracked")
_RECURRENT = re.compile(r"(weight|bias)_(ih|hh|hr)_l\d+(_reverse)?")  # nn.LSTM / nn.GRU / nn.RNN parameters
_DIGITS = re.compile(r"(\d+)")


@dataclass
class Module:
    """One Linear or Conv2d layer of the file: its module path and arrays (no bias: Linear(bias=False))."""

    path: str
    weight: np.ndarray
    bias: np.ndarray | None

    @property
    def conv(self) -> bool:
        return self.weight.ndim == 4

    @property
    def n_in(self) -> int:
        return int(self.weight.shape[1])

    @property
    def n_out(self) -> int:
        return int(self.weight.shape[0])

    @property
    def key(self) -> str:
        return describe_key(f"{self.path}.weight" if self.path else "weight")

    @property
    def named(self) -> str:
        return f"{self.key} {tuple(int(d) for d in self.weight.shape)}"

    def short(self) -> str:
        """``fc1`` for a named layer; ``0.weight`` for a numbered one (``0`` alone reads as a count)."""
        name = self.path.rpartition(".")[2]
        return describe_key(self.path if name and not name.isdigit() else f"{self.path}.weight".lstrip("."))

    def arrays(self, transpose: bool) -> tuple[np.ndarray, np.ndarray]:
        """(W, b) in DigitLab layout: copies, so the network never shares memory with the file's arrays."""
        w = self.weight.T if transpose else self.weight
        b = self.bias if self.bias is not None else np.zeros(self.n_out, self.weight.dtype)  # Linear(bias=False)
        return np.array(w, order="C", copy=True), np.array(b, copy=True)


# ----------------------------------------------------------------------------- keys -> layers


def _shaped(params: Mapping, keys: list[str]) -> str:
    return names(f"{k} {tuple(np.shape(params[k]))}" for k in keys)


def _array(value, key: str, where: str) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise WeightFileError(f"{where}: {describe_key(key)} is a {type(value).__name__}, not an array")
    if value.dtype.kind != "f":
        raise WeightFileError(f"{where}: {describe_key(key)} has dtype {value.dtype}; weights must be real numbers")
    if value.dtype.itemsize < 4:
        return value.astype(np.float32)  # float16 / bfloat16 stand-ins: no fast matrix products below float32
    return value


def modules_of(params: Mapping, where: str) -> list[Module]:
    """The file's Linear and Conv2d layers in the file's order; anything else refused, named with its shape."""
    if not isinstance(params, Mapping) or not params:
        raise WeightFileError(f"{where}: the state_dict holds no weight arrays")
    groups: dict[str, dict[str, np.ndarray]] = {}
    batchnorm, recurrent, other = [], [], []
    for key, value in params.items():
        if not isinstance(key, str):
            raise WeightFileError(f"{where}: a state_dict entry is named {describe_key(key)}; names must be strings")
        path, _, leaf = key.rpartition(".")
        if leaf in BATCHNORM_LEAVES:
            batchnorm.append(key)
        elif _RECURRENT.fullmatch(leaf):
            recurrent.append(key)
        elif leaf not in ("weight", "bias"):
            other.append(key)
        else:
            groups.setdefault(path, {})[leaf] = _array(value, key, where)
    if batchnorm:
        raise WeightFileError(f"{where}: BatchNorm layers ({_shaped(params, batchnorm)}) are not supported yet")
    if recurrent:
        raise WeightFileError(f"{where}: recurrent layers (LSTM/GRU/RNN: {_shaped(params, recurrent)}) are not "
                              "supported: DigitLab reads Linear and Conv2d layers")
    if other:
        raise WeightFileError(f"{where}: entries {_shaped(params, other)} are not the weight or bias of a Linear or "
                              "Conv2d layer, the only layers DigitLab reads")
    embeddings = [f"{p}.weight" for p in groups if "embed" in p.rpartition(".")[2].lower() and "weight" in groups[p]]
    if embeddings:
        raise WeightFileError(f"{where}: Embedding layers ({_shaped(params, embeddings)}) are not supported: DigitLab "
                              "reads Linear and Conv2d layers")
    if len(groups) > MAX_MODULES:
        raise WeightFileError(f"{where}: the state_dict has {len(groups):,} layers; DigitLab reads at most {MAX_MODULES}")
    return [_module(path, leaves, where) for path, leaves in groups.items()]


def _module(path: str, leaves: dict, where: str) -> Module:
    prefix = f"{path}." if path else ""
    if "weight" not in leaves:
        raise WeightFileError(f"{where}: {describe_key(prefix + 'bias')} {leaves['bias'].shape} has no "
                              f"{describe_key(prefix + 'weight')} beside it")
    w, b = leaves["weight"], leaves.get("bias")
    key, shape = describe_key(prefix + "weight"), tuple(w.shape)
    kind = {1: "a 1-D weight belongs to a normalisation layer (LayerNorm, GroupNorm, BatchNorm without running "
               "statistics), which is not supported", 3: "a 3-D weight is a Conv1d, which is not supported",
            5: "a 5-D weight is a Conv3d, which is not supported"}.get(w.ndim)
    if kind is None and w.ndim not in (2, 4):
        kind = "not a Linear (out, in) or Conv2d (out, in, k, k) weight"
    elif kind is None and w.ndim == 4 and w.shape[2] != w.shape[3]:
        kind = "DigitLab's convolutions take square kernels only"
    elif kind is None and w.ndim == 4 and w.shape[2] > MAX_KERNEL:
        kind = f"a {w.shape[2]}×{w.shape[3]} kernel is wider than a {SIDE}×{SIDE} image"
    elif kind is None and 0 in shape:
        kind = "it is empty"
    if kind:
        raise WeightFileError(f"{where}: {key} has shape {shape}: {kind}")
    if b is not None and b.shape != (w.shape[0],):
        raise WeightFileError(f"{where}: {describe_key(prefix + 'bias')} has shape {b.shape} but {key} has shape "
                              f"{shape}: it should have shape ({w.shape[0]},)")
    return Module(path, w, b)


# ----------------------------------------------------------------------------- order


def natural_key(path: str) -> tuple:
    """Sort key comparing runs of digits as numbers: ``layers.10`` after ``layers.2``, ``fc10`` after ``fc2``."""
    # (length, digits) compares numbers without int(), which refuses more than 4,300 digits
    return tuple((len(t.lstrip("0")), t.lstrip("0")) if i % 2 else t for i, t in enumerate(_DIGITS.split(path)))


def chain_break(seq: list[Module], first_in: int | None) -> int | None:
    """Index of the first layer that does not take what comes before it (``first_in`` for the first), or None."""
    for i, m in enumerate(seq):
        need = first_in if i == 0 else seq[i - 1].n_out
        if need is not None and m.n_in != need:
            return i
    return None


def _search(seq: list[Module], first_in: int | None) -> list[Module] | None:
    """An order of all of ``seq`` in which each layer takes what the one before gives, trying ``seq``'s order first."""
    used, path, steps = [False] * len(seq), [], [0]

    def extend(need: int | None) -> bool:
        if len(path) == len(seq):
            return True
        for i, m in enumerate(seq):
            if used[i] or (need is not None and m.n_in != need):
                continue
            steps[0] += 1
            if steps[0] > SEARCH_BUDGET:  # a file of a hundred same-sized layers must not take forever
                return False
            used[i] = True
            path.append(m)
            if extend(m.n_out):
                return True
            used[i] = False
            path.pop()
        return False

    return list(path) if extend(first_in) else None


def _chain_error(seq: list[Module], i: int, first_in: int | None, where: str) -> WeightFileError:
    m = seq[i]
    unit = "channels" if m.conv else "inputs"
    if i > 0:
        return WeightFileError(f"{where}: {m.named} takes {m.n_in:,} {unit} but {seq[i - 1].named} gives "
                               f"{seq[i - 1].n_out:,}: the layers do not chain")
    if m.conv:
        return WeightFileError(f"{where}: {m.named} takes {m.n_in} input channels but an MNIST image has 1 (grey)")
    return WeightFileError(f"{where}: {m.named} takes {m.n_in:,} inputs but an image has {first_in} pixels (28×28)")


def arrange(modules: list[Module], where: str) -> tuple[list[Module], list[Module], str]:
    """(convs, linears, a note on the order): the file's order when it chains, else by name, else any that chains."""
    convs = [m for m in modules if m.conv]
    linears = [m for m in modules if not m.conv]
    first_in = None if convs else INPUT_PIXELS
    in_file_order = not convs or not linears or modules.index(convs[-1]) < modules.index(linears[0])
    if in_file_order and chain_break(convs, 1) is None and chain_break(linears, first_in) is None:
        return convs, linears, ""
    convs_by_name = sorted(convs, key=lambda m: natural_key(m.path))
    linears_by_name = sorted(linears, key=lambda m: natural_key(m.path))
    if chain_break(convs_by_name, 1) is None and chain_break(linears_by_name, first_in) is None:
        return convs_by_name, linears_by_name, "ordered by name (the file's order does not chain)"
    found = [_search(convs_by_name, 1), _search(linears_by_name, first_in)]
    if found[0] is not None and found[1] is not None:
        return found[0], found[1], "ordered so that the shapes chain (neither the file's order nor the names' do)"
    for seq, start in ((convs_by_name, 1), (linears_by_name, first_in)):
        i = chain_break(seq, start)
        if i is not None:
            raise _chain_error(seq, i, start, where)
    raise WeightFileError(f"{where}: the layers do not chain in any order")  # unreachable: one order above breaks
