"""The ``digitlab`` command line, run in-process (no Qt is imported by any sub-command)."""
import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys

import numpy as np
import pytest

from app.cli import main
from engine.data.catalog import load_dataset
from engine.data.idx import write_idx
from engine.nn.network import make_mlp
from engine.weightfiles.save import save_weights


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version_prints_the_package_version_and_exits_0(capsys):
    from importlib.metadata import version

    code, out, err = run(capsys, "--version")
    assert code == 0 and err == ""
    assert out == f"digitlab {version('digitlab')}\n"


def test_version_without_installed_metadata_falls_back_to_pyproject(monkeypatch):
    import app.cli_io as cli_io

    def not_installed(name):
        raise cli_io.PackageNotFoundError(name)

    installed = cli_io.version("digitlab")  # an editable install: the same pyproject.toml
    monkeypatch.setattr(cli_io, "version", not_installed)
    assert cli_io.digitlab_version() == f"{installed} (source tree, not installed)"
    monkeypatch.setattr(cli_io, "_PYPROJECT", cli_io._PYPROJECT.with_name("no-such-file.toml"))
    assert cli_io.digitlab_version() == "unknown (not installed)"


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


def test_help_documents_the_exit_statuses_and_debug(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "--debug" in out
    for line in ("0    done", "1    bad input", "2    internal error", "3    training diverged", "130  interrupted"):
        assert line in out


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
def test_documented_training_reaches_095_on_the_real_mnist_test_set(tmp_path, capsys, shared_mnist_dir):
    """The README's command: trained on the sample's 10,000 digits, evaluated on the real 10,000 test digits."""
    model = tmp_path / "model.pkl"
    code, _, err = run(capsys, "train", "--dataset", "mnist-sample", "--hidden", "256,128", "--activation", "relu",
                       "--loss", "cross-entropy", "--optimizer", "adam", "--lr", "0.001", "--batch-size", "100",
                       "--epochs", "10", "--seed", "0", "--save", str(model))
    assert code == 0, err
    code, out, err = run(capsys, "evaluate", str(model), "--data-dir", str(shared_mnist_dir), "--json")
    assert code == 0, err
    assert json.loads(out)["accuracy"] >= 0.95  # 0.961 measured


def test_diverging_training_says_so_and_does_not_save(tmp_path, capsys):
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
    assert err.count("\n") == 1 and err.startswith(f"digitlab {argv[0]}: error: ")
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


# ----------------------------------------------------------------------------- hostile and broken input
# Every way a command can fail ends in one line: "digitlab CMD: error: FILE: what is wrong" (exit 1), an internal
# error with how to report it (exit 2), "interrupted" (exit 130); text from files never reaches the terminal raw.

ESC = "\x1b[2J"
BIG = "A" * 5_000_000


def one_error_line(err: str, command: str) -> str:
    lines = [line for line in err.splitlines() if ": error: " in line or "internal error" in line]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"digitlab {command}: error: ") and "Traceback" not in err
    return lines[0]


@pytest.fixture
def model(tmp_path):
    return save_weights(make_mlp([784, 16, 10], "relu", seed=0), tmp_path / "model.npz")


def digit_png(path, value=255):
    from PIL import Image

    img = np.zeros((40, 40), np.uint8)
    img[8:32, 18:23] = value  # a "1"
    Image.fromarray(img).save(path)
    return path


def bad_file(tmp_path, kind: str):
    """A path that is not a readable weight file or image, of the given kind."""
    path = tmp_path / f"bad-{kind}.npz"
    if kind == "missing":
        return path
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        return "/dev/zero"
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(bytes(range(256)) * 40)
    elif kind == "unreadable":
        path.write_bytes(b"PK\x03\x04" + b"\0" * 100)
        path.chmod(0)
    return path


FILE_KINDS = ["missing", "folder", "fifo", "device", "empty", "garbage", "unreadable"]


@pytest.mark.parametrize("kind", FILE_KINDS)
@pytest.mark.parametrize("command", ["inspect", "evaluate", "predict"])
def test_a_bad_weight_file_is_one_line_naming_it_once(tmp_path, capsys, tiny_data, command, kind):
    path = bad_file(tmp_path, kind)
    extra = {"inspect": [], "evaluate": ["--data-dir", str(tiny_data)],
             "predict": [str(digit_png(tmp_path / "one.png"))]}[command]
    code, out, err = run(capsys, command, str(path), *extra, "--json")
    assert code == 1
    line = one_error_line(err, command)
    assert line.count(str(path)) == 1, line
    assert json.loads(out)["error"] and json.loads(out)["exit_code"] == 1


def test_a_file_without_read_permission_is_one_line(tmp_path, capsys, monkeypatch, model):
    real_open = os.open

    def no_permission(name, *args, **kwargs):  # chmod 000 does not stop root, so the refusal is simulated
        if str(name) == str(model):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(name))
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_permission)
    code, out, err = run(capsys, "inspect", str(model))
    assert code == 1 and err == f"digitlab inspect: error: {model}: cannot read it: permission denied\n"


@pytest.mark.parametrize("kind", FILE_KINDS)
def test_a_bad_image_is_reported_and_the_others_are_still_classified(tmp_path, capsys, model, kind):
    good = [digit_png(tmp_path / "a.png"), digit_png(tmp_path / "b.png", 180)]
    bad = bad_file(tmp_path, kind)
    code, out, err = run(capsys, "predict", str(model), str(good[0]), str(bad), str(good[1]), "--json")
    assert code == 1
    assert one_error_line(err, "predict").count(str(bad)) == 1
    preds = json.loads(out)["predictions"]
    assert [p["image"] for p in preds] == [str(good[0]), str(bad), str(good[1])]
    assert preds[1]["class"] is None and str(bad) in preds[1]["error"]
    assert all(isinstance(preds[i]["class"], int) and len(preds[i]["probabilities"]) == 10 for i in (0, 2))
    assert json.loads(out)["failed"] == 1


@pytest.mark.parametrize("level", [0, 128, 255])
def test_a_blank_or_uniform_picture_has_no_digit(tmp_path, capsys, model, level):
    from PIL import Image

    blank = tmp_path / f"blank{level}.png"
    Image.fromarray(np.full((60, 45), level, np.uint8)).save(blank)
    code, out, err = run(capsys, "predict", str(model), str(blank), str(digit_png(tmp_path / "one.png")), "--json")
    assert code == 0, err
    assert f"{blank}: no digit found" in err
    first, second = json.loads(out)["predictions"]
    assert first["class"] is None and first["probabilities"] is None and first["note"] == "no digit found"
    assert isinstance(second["class"], int)


@pytest.mark.parametrize("argv", [
    ["train", "--epochs", "-1"], ["train", "--epochs", "0"], ["train", "--batch-size", "0"],
    ["train", "--batch-size", str(10 ** 30)], ["train", "--lr", "nan"], ["train", "--lr", "inf"],
    ["train", "--hidden", "99999999"], ["train", "--hidden", ",".join(["4"] * 40)], ["train", "--seed", "-1"],
    ["train", "--epochs", "ten"], ["train", "--epochs", "9" * 5000], ["train", "--optimizer", "momentum", "--momentum", "nan"],
    ["gradcheck", "--batch", "0"], ["gradcheck", "--batch", "100000"], ["gradcheck", "--hidden", "99999999"],
    ["evaluate", "m.npz", "--input-scale", "3"], ["train", "--activation", ESC],
])
def test_a_bad_argument_is_one_line_before_any_work(argv, capsys, monkeypatch):
    monkeypatch.setattr("app.cli.load_dataset", lambda *a, **k: pytest.fail("the data was loaded"))
    code, out, err = run(capsys, *argv, "--json")
    assert code == 1
    one_error_line(err, argv[0])
    assert len(err) < 1000 and "\x1b" not in err and "usage:" not in err
    assert json.loads(out)["kind"] == "error"


def test_an_unknown_command_is_one_line(capsys):
    code, out, err = run(capsys, "frobnicate")
    assert code == 1 and err.startswith("digitlab: error: argument COMMAND: invalid choice") and err.count("\n") == 1


def test_garbage_in_the_data_folder_is_one_line(tmp_path, capsys, model):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + bytes(range(256)) * 8)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"junk")
    code, out, err = run(capsys, "evaluate", str(model), "--data-dir", str(tmp_path))
    assert code == 1
    one_error_line(err, "evaluate")


@pytest.mark.parametrize("target, fragment", [
    ("missing/model.npz", "missing does not exist"), ("model.txt", "unknown weight file suffix '.txt'"),
    ("model", "unknown weight file suffix"), ("afile/model.npz", "afile is not a folder"),
    ("afolder.npz", "afolder.npz: cannot save weights: it is a folder"), ("read-only/model.npz", "is not writable"),
])
def test_train_checks_where_it_will_save_before_training(tmp_path, capsys, monkeypatch, target, fragment):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "read-only").mkdir()
    os.mkdir(tmp_path / "afolder.npz")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: "read-only" not in str(p) and real_access(p, m))
    monkeypatch.setattr("app.cli.load_dataset", lambda *a, **k: pytest.fail("training started"))
    code, out, err = run(capsys, "train", "--save", str(tmp_path / target))
    assert code == 1
    assert fragment in one_error_line(err, "train")


def test_a_full_disk_while_saving_is_one_plain_line_and_leaves_nothing(tmp_path, capsys, monkeypatch, tiny_data):
    import engine.weightfiles.save as saver

    def full(f, params, meta_json):
        f.write(b"PK\x03\x04 half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(saver, "_write_npz", full)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, out, err = run(capsys, "train", "--data-dir", str(tiny_data), "--hidden", "5", "--epochs", "1",
                         "--save", str(out_dir / "model.npz"))
    assert code == 1 and "epoch   1/1" in err
    line = one_error_line(err, "train")
    assert line.startswith(f"digitlab train: error: {out_dir / 'model.npz'}: cannot save weights: the disk is full")
    assert list(out_dir.iterdir()) == []


def test_saved_weights_follow_the_umask_and_links(tmp_path, capsys, tiny_data):
    store = tmp_path / "store"
    store.mkdir()
    (store / "model.npz").write_bytes(b"old")
    (store / "model.npz").chmod(0o640)
    link = tmp_path / "model.npz"
    link.symlink_to(store / "model.npz")
    code, out, err = run(capsys, "train", "--data-dir", str(tiny_data), "--hidden", "5", "--epochs", "1",
                         "--save", str(link), "--json")
    assert code == 0, err
    assert link.is_symlink() and (store / "model.npz").read_bytes()[:2] == b"PK"
    assert stat.S_IMODE((store / "model.npz").stat().st_mode) == 0o640
    assert json.loads(out)["saved_to"] == str(store / "model.npz")


@pytest.mark.parametrize("exc", [TypeError("unhashable type: 'list'"), MemoryError(), RecursionError("too deep"),
                                 KeyError(ESC + BIG)])
def test_an_internal_error_is_one_line_saying_how_to_report_it(capsys, monkeypatch, model, exc):
    def broken(*args, **kwargs):
        raise exc

    monkeypatch.setattr("app.cli.inspect_weights", broken)
    code, out, err = run(capsys, "inspect", str(model), "--json")
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err and "\x1b" not in err and len(err) < 1000
    assert err.startswith(f"digitlab inspect: internal error: {type(exc).__name__}")
    assert "please report this" in err and "--debug" in err
    assert json.loads(out)["kind"] == "internal error" and json.loads(out)["exit_code"] == 2


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback_given_before_or_after_the_command(capsys, monkeypatch, model, where):
    monkeypatch.setattr("app.cli.inspect_weights", lambda *a, **k: {}["missing"])
    argv = ["--debug", "inspect", str(model)] if where == "before" else ["inspect", str(model), "--debug"]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("Traceback") and "KeyError" in err and "the traceback above" in err


def test_ctrl_c_is_one_line_and_exit_130(capsys, monkeypatch, model):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("app.cli.inspect_weights", interrupted)
    code, out, err = run(capsys, "inspect", str(model), "--json")
    assert code == 130 and err == "digitlab inspect: interrupted\n"
    assert json.loads(out)["error"] == "interrupted"


def test_opening_the_window_fails_in_one_line(capsys, monkeypatch):
    def no_qt():
        raise ModuleNotFoundError("No module named 'PySide6'", name="PySide6")

    monkeypatch.setattr("app.cli._open_window", no_qt)
    code, out, err = run(capsys)
    assert code == 1 and err.startswith("digitlab: error: the window cannot open") and err.count("\n") == 1
    monkeypatch.setattr("app.cli._open_window", lambda: [][0])
    code, out, err = run(capsys)
    assert code == 2 and err.startswith("digitlab: internal error: IndexError")


def hostile_weight_files(folder) -> list:
    """Weight files whose keys, metadata and class names hold terminal escapes and 5 MB strings."""
    import pickle
    import sys
    import types

    W, b = np.zeros((784, 10), np.float32), np.zeros(10, np.float32)
    meta = {"format": "digitlab-weights", "format_version": 1,
            "spec": {"layers": [{"type": "affine", "in": 784, "out": 10}], "loss": "cross-entropy"},
            "info": {"note": ESC + BIG, ESC + "key": ESC}, "training": {"label": ESC + BIG}}
    np.savez(folder / "meta.npz", W1=W, b1=b, __digitlab__=np.array(json.dumps(meta)))
    np.savez(folder / "keys.npz", **{"W1" + ESC + "k" * 60_000: W, "b1": b})
    cls = type("PlaceholderName", (), {"__module__": "placeholdermodule"})
    module = types.ModuleType("placeholdermodule")
    module.PlaceholderName = cls
    sys.modules["placeholdermodule"] = module
    try:
        data = pickle.dumps({"W1": W, "b1": b, ESC + BIG: cls(), "net": cls()}, protocol=2)
    finally:
        del sys.modules["placeholdermodule"]
    data = data.replace(b"placeholdermodule", f"evil{ESC}".encode()).replace(
        b"PlaceholderName", f"N{ESC}{BIG}".encode())
    (folder / "classes.pkl").write_bytes(data)
    return [folder / "meta.npz", folder / "keys.npz", folder / "classes.pkl"]


def test_text_from_hostile_files_never_reaches_the_terminal_raw(tmp_path, capsys, tiny_data):
    image = digit_png(tmp_path / "one.png")
    for path in hostile_weight_files(tmp_path):
        for argv in (["inspect", str(path)], ["inspect", str(path), "--json"],
                     ["evaluate", str(path), "--data-dir", str(tiny_data), "--json"],
                     ["predict", str(path), str(image), "--json"]):
            code, out, err = run(capsys, *argv)
            assert code in (0, 1), err
            assert "\x1b" not in err and len(err) < 8000, (argv, len(err))
            assert "Traceback" not in err
            if "--json" in argv:
                assert "\x1b" not in out and len(out) < 64_000 and json.loads(out)


def test_a_file_name_with_escapes_is_shown_escaped(tmp_path, capsys):
    path = tmp_path / f"evil{ESC}.npz"
    code, out, err = run(capsys, "inspect", str(path))
    assert code == 1 and "\x1b" not in err and "evil\\x1b[2J.npz: no such file" in err


# ----------------------------------------------------------------------------- as a process: exit codes, signals

def cli_process(*argv, code_prefix: str = "", **kwargs):
    script = f"import sys\nimport app.cli as cli\n{code_prefix}\nsys.exit(cli.main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", script, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


def test_ctrl_c_in_a_terminal_prints_interrupted_and_exits_130():
    proc = cli_process("gradcheck", "--hidden", "200")
    first = proc.stderr.readline()
    assert first.startswith("checking"), first
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip() == "digitlab gradcheck: interrupted" and "Traceback" not in err


def test_a_closed_stdout_pipe_ends_quietly():
    with cli_process("gradcheck", "--hidden", "3", "--json") as proc:
        proc.stdout.close()  # like `| head -0`: the reader is gone before the JSON is written
        err = proc.stderr.read()
        assert proc.wait(timeout=60) == 0
    assert "Traceback" not in err and "Exception ignored" not in err and "BrokenPipe" not in err


@pytest.mark.parametrize("debug", [False, True])
def test_an_internal_error_in_a_process_shows_a_traceback_only_with_debug(model, debug):
    proc = cli_process("inspect", str(model), *(["--debug"] if debug else []),
                       code_prefix="cli.inspect_weights = lambda *a, **k: 1 / 0")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert ("Traceback" in err) == debug
    assert err.strip().splitlines()[-1].startswith("digitlab inspect: internal error: ZeroDivisionError")


def test_ctrl_c_during_training_stops_reports_and_still_saves(tmp_path, tiny_data):
    model = tmp_path / "model.npz"
    proc = cli_process("train", "--data-dir", str(tiny_data), "--hidden", "5", "--epochs", "1000000",
                       "--save", str(model), "--json")
    lines = [proc.stderr.readline() for _ in range(2)]
    assert lines[1].startswith("epoch"), lines
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "interrupted: stopping after the current iteration" in err and "Traceback" not in err
    result = json.loads(out)
    assert result["status"] == "stopped" and result["saved_to"] == str(model) and model.is_file()
