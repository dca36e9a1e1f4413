"""`digitlab train` trains every architecture, the book's CNNs with the book's settings, and with a schedule."""
import json

import numpy as np
import pytest

from app.cli import main
from engine.nn.models import ARCHITECTURES


def train(capsys, *argv):
    code = main(["train", *argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out), err


@pytest.mark.parametrize("architecture", [a for a in ARCHITECTURES if a != "mlp"])
def test_every_cnn_trains_from_the_command_line_and_saves_what_it_trained(tmp_path, capsys, tiny_data, architecture):
    saved = tmp_path / f"{architecture}.npz"
    out, err = train(capsys, "--data-dir", str(tiny_data), "--architecture", architecture, "--epochs", "1",
                     "--batch-size", "10", "--save", str(saved))
    assert out["status"] == "finished" and out["iterations"] == 6  # 60 images, batch 10
    assert out["config"]["architecture"] == architecture
    assert 0.0 <= out["test_accuracy"] <= 1.0
    code = main(["inspect", str(saved), "--json"])
    shown = json.loads(capsys.readouterr().out)
    assert code == 0 and "conv" in json.dumps(shown)


@pytest.mark.parametrize("architecture", ["simple-convnet", "deep-convnet"])
def test_the_books_cnns_default_to_the_books_settings(capsys, tiny_data, architecture, monkeypatch):
    seen = {}
    import app.cli as cli

    def fake_train(network, optimizer, x, t, xt, tt, settings, control, callback):
        seen.update(optimizer=optimizer, settings=settings, W1=network.params["W1"])
        raise SystemExit(0)  # the settings are what this test is about, not 20 epochs of training

    monkeypatch.setattr(cli, "train", fake_train)
    with pytest.raises(SystemExit):
        main(["train", "--data-dir", str(tiny_data), "--architecture", architecture])
    capsys.readouterr()
    assert seen["optimizer"].name == "adam" and seen["optimizer"].lr == 0.001
    assert seen["settings"].epochs == 20 and seen["settings"].batch_size == 100
    W1 = seen["W1"]  # SimpleConvNet starts from the book's weight_init_std=0.01; DeepConvNet from He's √(2/9)
    expected = 0.01 if architecture == "simple-convnet" else np.sqrt(2 / 9)
    assert np.std(W1) == pytest.approx(expected, rel=0.2)
    with pytest.raises(SystemExit):
        main(["train", "--data-dir", str(tiny_data), "--architecture", architecture, "--epochs", "3"])
    assert seen["settings"].epochs == 3  # a number given wins


def test_a_one_cycle_run_reports_its_schedule_and_trains_with_it(capsys, tiny_data):
    out, err = train(capsys, "--data-dir", str(tiny_data), "--hidden", "8", "--optimizer", "sgd", "--lr", "0.5",
                     "--schedule", "one-cycle", "--epochs", "2", "--batch-size", "10")
    assert out["config"]["schedule"] == "one-cycle" and out["status"] == "finished"
    assert "one-cycle" in err.splitlines()[0]  # "training 784-8-10 relu, sgd lr=0.5 one-cycle, batch 10, …"


def test_an_unknown_schedule_is_one_line(capsys, tiny_data):
    code = main(["train", "--data-dir", str(tiny_data), "--schedule", "sawtooth"])
    err = capsys.readouterr().err
    assert code == 1 and "invalid choice: 'sawtooth'" in err and "Traceback" not in err
