"""A DigitLab network as the state_dict and source of an equivalent PyTorch ``nn.Sequential``.

The model takes pixels in [0, 1] and gives the same logits as ``network.scores``: shaped
(N, 1, 28, 28) for a CNN; an MLP starts with ``nn.Flatten()``, so it takes (N, 784) and
(N, 1, 28, 28) alike (which shifts its keys to ``1.weight``, ``3.weight``, …). What PyTorch's
layers do not do is folded into the weights, exactly:

- the input scale and shift (``x * input_scale + input_shift``) into the first layer's weight and
  bias; a shift cannot be folded into a convolution that pads with zeros (the padded border would
  be shifted too), so such a network is refused;
- the book's inference dropout (``x * (1 - ratio)``; PyTorch's ``nn.Dropout`` is the identity in
  eval mode) into the next conv/affine layer's weight, or into the previous one's weight and bias
  when nothing linear follows (ReLU, max-pooling and dropout commute with a positive factor).
  ``nn.Dropout(ratio)`` is kept in the model: its training mode, inverted dropout on the folded
  weights, then trains like the book's dropout.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from engine.errors import WeightFileError

PARAMETRIC = ("conv", "affine")
POSITIVE_HOMOGENEOUS = ("relu", "pool", "dropout")  # f(c·x) = c·f(x) for c > 0: a scale passes through them
NON_NEGATIVE = ("relu", "sigmoid")  # outputs ≥ 0: padding with 0 (DigitLab) and with −∞ (PyTorch) pool alike
ACTIVATION_MODULES = {"relu": "nn.ReLU()", "sigmoid": "nn.Sigmoid()", "tanh": "nn.Tanh()"}


def _error(text: str) -> WeightFileError:
    return WeightFileError(f"cannot export to PyTorch: {text}")


def torch_layout_arrays(layers: list[dict], params) -> dict[int, list[np.ndarray]]:
    """Layer index -> [weight, bias] in torch layout (Linear weights (out, in)), as float64 copies to fold into."""
    arrays, n = {}, 0
    for i, layer in enumerate(layers):
        if layer.get("type") in PARAMETRIC:
            n += 1
            W, b = (np.array(params[f"{k}{n}"], dtype=np.float64) for k in ("W", "b"))
            arrays[i] = [W.T.copy() if layer["type"] == "affine" else W, b]
    return arrays


def _dropout_target(layers: list[dict], arrays: dict, d: int) -> tuple[int, bool]:
    """(layer, with its bias) taking dropout ``d``'s factor: the next parametric layer, else the previous one."""
    for i in range(d + 1, len(layers)):
        if i in arrays:
            return i, False  # the next layer reads factor·x: W·(factor·x) = (factor·W)·x
        if layers[i].get("type") not in POSITIVE_HOMOGENEOUS:
            break
    for i in range(d - 1, -1, -1):
        if i in arrays:
            return i, True  # factor·(W·x + b), passed unchanged through ReLU, pooling and dropout
        if layers[i].get("type") not in POSITIVE_HOMOGENEOUS:
            break
    raise WeightFileError(f"layer {d + 1} (dropout, ratio {layers[d].get('ratio', 0.5)}) has no conv or affine layer "
                          "next to it that its scaling could be folded into")


def _input_target(layers: list[dict], arrays: dict, scale: float, shift: float) -> int | None:
    """The layer taking ``x * scale + shift`` (None when there is nothing to fold); raises when none can."""
    if scale == 1.0 and shift == 0.0:
        return None
    first = min(arrays) if arrays else len(layers)
    before = [layer.get("type") for layer in layers[:first]]
    # dropout is linear (folded into this layer's weight first); ReLU and pooling let a positive scale through only
    passes = {"dropout"} if shift or scale <= 0 else set(POSITIVE_HOMOGENEOUS)
    if first == len(layers) or set(before) - passes:
        raise WeightFileError(f"the input scaling (×{scale:g}, {shift:+g}) cannot be folded into the first conv or "
                              f"affine layer because {', '.join(before) or 'nothing'} comes before it; save as .npz instead")
    layer = layers[first]
    if shift and layer["type"] == "conv" and int(layer.get("pad", 0)):
        raise WeightFileError(f"this network shifts its input pixels by {shift:+g} before a convolution padded by "
                              f"{layer.get('pad')}: PyTorch pads the unshifted image with zeros, so no nn.Sequential "
                              "from pixels in [0, 1] computes the same; save as .npz instead")
    return first


def fold(layers: list[dict], arrays: dict, scale: float, shift: float, inverse: bool = False) -> None:
    """Fold the input scaling and the book's inference dropout into ``arrays`` (in place); ``inverse`` undoes it.

    Dropouts first, then the input: the shift adds the sums of the weights the input meets, dropout factor included.
    """
    drops = [(d, *_dropout_target(layers, arrays, d), 1.0 - float(layers[d].get("ratio", 0.5)))
             for d, layer in enumerate(layers) if layer.get("type") == "dropout" and float(layer.get("ratio", 0.5))]
    first = _input_target(layers, arrays, scale, shift)
    if inverse and first is not None:
        W, b = arrays[first]
        W /= scale
        b -= shift * W.reshape(W.shape[0], -1).sum(axis=1)
    for _, target, with_bias, factor in drops:
        for array in arrays[target][: 1 + with_bias]:
            if inverse:
                array /= factor
            else:
                array *= factor
    if not inverse and first is not None:
        W, b = arrays[first]
        # W·(s·x + t) + b = (s·W)·x + (b + t·ΣW): each output's weights summed (pad 0: every window is in the image)
        b += shift * W.reshape(W.shape[0], -1).sum(axis=1)
        W *= scale


def _pool_module(layers: list[dict], i: int) -> str:
    layer = layers[i]
    size = int(layer.get("size", 2))
    stride, pad = int(layer.get("stride", size)), int(layer.get("pad", 0))
    if pad:
        if 2 * pad > size:
            raise _error(f"layer {i + 1} pools {size}×{size} windows with pad {pad}; PyTorch's MaxPool2d pads at "
                         "most half a window")
        before = next((layers[j].get("type") for j in range(i - 1, -1, -1)
                       if layers[j].get("type") not in ("pool", "dropout")), None)
        if before not in NON_NEGATIVE:  # zero padding only equals PyTorch's −∞ padding under non-negative inputs
            raise _error(f"layer {i + 1} max-pools with zero padding after {before or 'the input'}; PyTorch pads with "
                         "−∞, which only gives the same after ReLU or sigmoid")
    if stride == size and not pad:
        return f"nn.MaxPool2d({size})"
    return f"nn.MaxPool2d({size}, stride={stride}, padding={pad})"


def to_torch(network) -> tuple["OrderedDict[str, np.ndarray]", str]:
    """(state_dict in torch layout with nn.Sequential keys, the Python source of that nn.Sequential).

    ``eval(source, {"nn": torch.nn})`` builds the model; ``load_state_dict`` (strict) fills it; for
    pixels in [0, 1] it gives ``network.scores`` (see the module doc for what is folded, and how).
    Raises WeightFileError for a layer type or setting PyTorch's standard layers cannot reproduce.
    """
    spec = network.spec()
    layers = [dict(layer) for layer in spec["layers"]]
    known = set(PARAMETRIC) | set(ACTIVATION_MODULES) | {"pool", "dropout"}
    for i, layer in enumerate(layers):
        if layer.get("type") not in known:
            raise _error(f"layer {i + 1} is a {layer.get('type')!r} layer, which has no nn.Sequential counterpart here")
    arrays = torch_layout_arrays(layers, network.params)
    try:
        fold(layers, arrays, float(network.input_scale), float(getattr(network, "input_shift", 0.0)))
    except WeightFileError as exc:
        raise _error(str(exc)) from None
    dtype = network.dtype if np.dtype(network.dtype).kind == "f" else np.float32
    modules, state = [], OrderedDict()
    flat = len(spec["input_shape"]) == 1
    if flat or (layers and layers[0]["type"] == "affine"):
        modules.append("nn.Flatten()")  # (N, 1, 28, 28) or (N, 784) in, (N, 784) out
        flat = True
    for i, layer in enumerate(layers):
        kind = layer["type"]
        if kind == "affine" and not flat:
            modules.append("nn.Flatten()")  # (C, H, W) order, as DigitLab's affine layer flattens
            flat = True
        if kind in PARAMETRIC:
            W, b = arrays[i]
            index = len(modules)
            state[f"{index}.weight"] = np.ascontiguousarray(W, dtype=dtype)
            state[f"{index}.bias"] = np.ascontiguousarray(b, dtype=dtype)
        if kind == "affine":
            modules.append(f"nn.Linear({W.shape[1]}, {W.shape[0]})")
        elif kind == "conv":
            f, c, k, _ = W.shape
            stride, pad = int(layer.get("stride", 1)), int(layer.get("pad", 0))
            modules.append(f"nn.Conv2d({c}, {f}, {k}" + (f", stride={stride}" if stride != 1 else "")
                           + (f", padding={pad}" if pad else "") + ")")
        elif kind == "pool":
            modules.append(_pool_module(layers, i))
        elif kind == "dropout":
            modules.append(f"nn.Dropout({float(layer.get('ratio', 0.5))!r})")
        else:
            modules.append(ACTIVATION_MODULES[kind])
    return state, "nn.Sequential(" + ", ".join(modules) + ")"
