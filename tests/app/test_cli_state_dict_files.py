"""PyTorch-style files written by our own writers (no torch needed): evaluated on the real MNIST test set, each gives
the accuracy of the network it was written from, to 0.1%, although none says how it was built.

A network DigitLab trained is exported as ``nn.Sequential`` tensors (``engine.weightfiles.state_dict.to_torch``,
which tests/engine/weightfiles/test_state_dict.py checks against PyTorch's own arithmetic), then written without
DigitLab's metadata the ways PyTorch users hold weights: a state_dict under other names, a training checkpoint,
a whole pickled module, safetensors with keys in alphabetical order. DigitLab has to read the architecture off
the keys and shapes (a CNN's pads and pools by probe) and the pixel convention by probe.
"""
import importlib.util
import io
import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from engine.data.catalog import load_data_dir
from engine.nn.models import lenet_spec
from engine.nn.optimizers import Adam
from engine.nn.network import build_network, make_mlp
from engine.train.loop import TrainSettings, train
from engine.weightfiles.safetensors_io import write_safetensors
from engine.weightfiles.state_dict import to_torch

HERE = Path(__file__).resolve().parents[1] / "engine" / "weightfiles"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)  # a helper beside the weight-file tests, not a package
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fx():
    return _script("torch_fixtures")


@pytest.fixture(scope="module")
def networks(small_dataset):
    """An MLP and a LeNet trained for an epoch on the small dataset: real enough that a wrong reading shows."""
    mlp = make_mlp([784, 64, 10], "relu", seed=0)
    lenet = build_network(lenet_spec(), seed=0)
    for net in (mlp, lenet):
        train(net, Adam(lr=0.003), small_dataset.x_train, small_dataset.t_train,
              settings=TrainSettings(batch_size=50, epochs=1, eval_train_limit=0))
    return {"mlp": mlp, "lenet": lenet}


def _accuracy(net, data_dir) -> float:
    test = load_data_dir(data_dir, test_only=True)
    return float(np.mean(net.predict(test.x_test).argmax(axis=1) == test.t_test))


def _evaluate(capsys, path, data_dir) -> dict:
    code = main(["evaluate", str(path), "--data-dir", str(data_dir), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def _renamed(state: OrderedDict, prefix: str) -> OrderedDict:
    return OrderedDict((f"{prefix}{key}", value) for key, value in state.items())


def _module_file(fx, state: OrderedDict) -> bytes:
    """``torch.save(model)`` of a custom module holding ``fc1``, ``fc2``, … (or ``conv1``, …) and a Dropout."""
    storages = fx.Storages()
    children, counts = {}, {"conv": 0, "fc": 0}
    for key in [k for k in state if k.endswith(".weight")]:
        w, b = state[key], state[key[:-len("weight")] + "bias"]
        kind = "conv" if w.ndim == 4 else "fc"
        counts[kind] += 1
        if kind == "fc":
            children[f"fc{counts['fc']}"] = fx.linear(storages, w, b)
        else:
            children[f"conv{counts['conv']}"] = fx.module("torch.nn.modules.conv.Conv2d", storages,
                                                          {"weight": w, "bias": b})
    children["dropout"] = fx.plain("dropout.Dropout", storages, p=0.25)
    return fx.zip_file(fx.module("__main__.Net", storages, children=children), storages)


@pytest.mark.parametrize("name", ["mlp", "lenet"])
@pytest.mark.parametrize("form", ["state_dict", "checkpoint", "whole module", "safetensors"])
def test_pytorch_style_files_give_the_writers_accuracy(name, form, fx, networks, shared_mnist_dir, tmp_path, capsys):
    net = networks[name]
    state, _source = to_torch(net)
    path = tmp_path / f"{name}-{form.replace(' ', '-')}.pt"
    if form == "state_dict":
        path.write_bytes(fx.state_dict_file(_renamed(state, "model.net.")))
    elif form == "checkpoint":
        storages = fx.Storages()
        checkpoint = {"epoch": 3, "model_state_dict": storages.state(state), "loss": 0.05,
                      "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 0.003}]}}
        path.write_bytes(fx.zip_file(checkpoint, storages))
    elif form == "whole module":
        path.write_bytes(_module_file(fx, state))
    else:
        path = path.with_suffix(".safetensors")
        buffer = io.BytesIO()
        write_safetensors(buffer, dict(sorted(state.items())))  # no metadata; keys as a safetensors file sorts them
        path.write_bytes(buffer.getvalue())
    expected = _accuracy(net, shared_mnist_dir)
    assert expected > 0.85
    report = _evaluate(capsys, path, shared_mnist_dir)
    assert abs(report["accuracy"] - expected) <= 0.001, (report["accuracy"], expected, report["architecture"])
    code = main(["inspect", str(path), "--json"])  # says what format it found and how it read the architecture
    info = json.loads(capsys.readouterr().out)
    assert code == 0 and info["recognised"]
    assert KINDS[form] in info["kind"] and ("Conv2d" if name == "lenet" else "Linear layers") in info["how"]


KINDS = {"state_dict": "PyTorch state_dict (zip format)", "checkpoint": "PyTorch checkpoint, state_dict under "
         "'model_state_dict'", "whole module": "PyTorch whole module __main__.Net", "safetensors": "safetensors"}


def test_the_pixel_convention_can_be_given(fx, networks, tmp_path, capsys):
    state, _source = to_torch(networks["mlp"])
    path = tmp_path / "mlp.pt"
    path.write_bytes(fx.state_dict_file(state))
    code = main(["evaluate", str(path), "--pixels", "mnist-normalised", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    assert report["input_scale"] == pytest.approx(1 / 0.3081) and report["input_shift"] == pytest.approx(-0.1307 / 0.3081)
