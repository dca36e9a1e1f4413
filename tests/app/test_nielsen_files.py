"""Michael Nielsen's files: his networks (a pickled network.py Network, network2.py's JSON) evaluated on the real
MNIST test set give the accuracy his own feedforward computes, and his mnist.pkl.gz is a dataset for the command
line (``--data-file``) and the window (File ▸ Open dataset)."""
import gzip
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from engine.data.catalog import load_data_dir
from engine.nn.network import make_mlp
from engine.nn.optimizers import Adam
from engine.train.loop import TrainSettings, train

FIXTURES_PATH = Path(__file__).resolve().parents[1] / "engine" / "weightfiles" / "nielsen_fixtures.py"


@pytest.fixture(scope="module")
def fixtures():
    spec = importlib.util.spec_from_file_location("nielsen_fixtures", FIXTURES_PATH)
    module = importlib.util.module_from_spec(spec)  # a script beside the weight-file tests, not a package
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def nielsen_weights(small_dataset):
    """A 784-30-10 sigmoid network, trained, in Nielsen's layout: weights (out, in), biases (out, 1), float64."""
    net = make_mlp([784, 30, 10], activation="sigmoid", seed=0)
    train(net, Adam(lr=0.003), small_dataset.x_train, small_dataset.t_train,
          settings=TrainSettings(batch_size=50, epochs=2, eval_train_limit=0))
    weights = [net.params["W1"].T.astype(np.float64), net.params["W2"].T.astype(np.float64)]
    biases = [net.params["b1"].reshape(-1, 1).astype(np.float64), net.params["b2"].reshape(-1, 1).astype(np.float64)]
    return weights, biases


def _nielsen_accuracy(fixtures, weights, biases, ds) -> float:
    """What Nielsen's ``Network.evaluate`` computes: argmax of ``feedforward`` (here all images as columns at once)."""
    outputs = fixtures.feedforward(weights, biases, ds.x_test.T.astype(np.float64))
    return float(np.mean(outputs.argmax(axis=0) == ds.t_test))


def _evaluate(capsys, path, data_dir) -> dict:
    code = main(["evaluate", str(path), "--data-dir", str(data_dir), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("form", ["network.py pickle, protocol 0", "network.py pickle, protocol 2",
                                  "network2.py JSON"])
def test_nielsen_networks_give_the_accuracy_his_code_computes(form, fixtures, nielsen_weights, shared_mnist_dir,
                                                               tmp_path, capsys):
    weights, biases = nielsen_weights
    if form.startswith("network.py"):
        state = fixtures.py2_state([784, 30, 10], weights, biases)
        path = tmp_path / "net.pkl"
        path.write_bytes(fixtures.network_pickle(state, protocol=int(form[-1])))
    else:
        path = tmp_path / "net.json"
        path.write_bytes(fixtures.network2_json([784, 30, 10], weights, biases))
    expected = _nielsen_accuracy(fixtures, weights, biases, load_data_dir(shared_mnist_dir, test_only=True))
    assert expected > 0.85
    report = _evaluate(capsys, path, shared_mnist_dir)
    assert abs(report["accuracy"] - expected) <= 0.001, (report["accuracy"], expected)
    assert report["activation"] == "sigmoid" and report["input_scale"] == 1.0


def _mnist_pkl_gz(fixtures, ds, path: Path) -> Path:
    """Nielsen's mnist.pkl.gz layout from a dataset: (training, validation, test), float32 images, int64 labels."""
    x, t = ds.x_train.astype(np.float32), ds.t_train.astype(np.int64)
    parts = ((x[:1500], t[:1500]), (x[1500:2000], t[1500:2000]),
             (ds.x_test[:1000].astype(np.float32), ds.t_test[:1000].astype(np.int64)))
    path.write_bytes(gzip.compress(fixtures.dataset_pickle(parts), mtime=0))
    return path


def test_data_file_trains_and_evaluates_from_the_command_line(fixtures, small_dataset, tmp_path, capsys):
    data = _mnist_pkl_gz(fixtures, small_dataset, tmp_path / "mnist.pkl.gz")
    code = main(["train", "--data-file", str(data), "--hidden", "30", "--epochs", "2", "--save",
                 str(tmp_path / "m.npz"), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    assert report["test_accuracy"] > 0.6  # 2,000 training digits, two epochs
    code = main(["evaluate", str(tmp_path / "m.npz"), "--data-file", str(data), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["images"] == 1000


def test_a_data_file_that_runs_code_or_is_not_data_is_one_line(tmp_path, capsys):
    evil = tmp_path / "evil.pkl.gz"
    evil.write_bytes(gzip.compress(b"cos\nsystem\n(S'touch /tmp/digitlab-nielsen-evil'\ntR.", mtime=0))
    code = main(["train", "--data-file", str(evil)])
    err = capsys.readouterr().err
    assert code == 1 and "tries to call os.system" in err and len(err.strip().splitlines()) == 1
    assert not Path("/tmp/digitlab-nielsen-evil").exists()
    weights_file = tmp_path / "weights.pkl.gz"
    weights_file.write_bytes(gzip.compress(b"\x80\x02}q\x00.", mtime=0))  # an empty dict: not a dataset
    code = main(["train", "--data-file", str(weights_file)])
    err = capsys.readouterr().err
    assert code == 1 and str(weights_file) in err and len(err.strip().splitlines()) == 1


def test_file_menu_opens_a_dataset_file(qtbot, quiet_window, fixtures, small_dataset, tmp_path):
    window = quiet_window
    data = _mnist_pkl_gz(fixtures, small_dataset, tmp_path / "mnist.pkl.gz")
    window.ask_dataset_path = lambda: str(data)
    window.action_open_dataset.trigger()
    qtbot.waitUntil(lambda: window.session.dataset is not None, timeout=20_000)
    ds = window.session.dataset
    assert (len(ds.x_train), len(ds.x_test)) == (2000, 1000) and "Nielsen" in ds.source
    assert window.panel.dataset.currentText().startswith("File: ")
    assert not window.errors
