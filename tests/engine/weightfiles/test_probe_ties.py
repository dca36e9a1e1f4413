"""When the probe cannot tell two readings of a weight file apart, the book's conventions decide:
pixels in [0, 1] first, then sigmoid before relu ("cannot tell apart": a paired test on the probe digits). A network DigitLab trained and saved as a
book-compatible pickle re-opens as it was trained, not as "[0, 255] (guessed)" with saturated answers."""
from __future__ import annotations

import numpy as np
import pytest

from engine.data.catalog import load_dataset
from engine.train.config import TrainConfig
from engine.train.loop import train
from engine.weightfiles import probe
from engine.weightfiles.recognise import load_weights
from engine.weightfiles.save import save_weights


class _Answers:
    """A stand-in network that answers right on ``right`` images in a row from ``start`` (wrapping round)."""

    def __init__(self, labels: np.ndarray, right: int, start: int = 0):
        self.labels, self.right, self.start = labels, right, start

    def scores(self, x: np.ndarray) -> np.ndarray:
        n = len(self.labels)
        wrong = (np.arange(n) - self.start) % n >= self.right
        answers = np.where(wrong, (self.labels + 1) % 10, self.labels)
        return np.eye(10, dtype=np.float32)[answers]


def _choose(right: dict, n: int = 500):
    """``right`` maps (activation, scale) to how many probe digits it gets right, or to (how many, from where)."""
    labels = np.arange(n) % 10
    candidates = [probe.Candidate(a, s) for a, s in right]
    notes: list[str] = []
    spec = {c: v if isinstance(v, tuple) else (v, 0) for c, v in right.items()}
    chosen, scores = probe.choose(candidates, lambda c: _Answers(labels, *spec[(c.activation, c.scale)]),
                                  (np.zeros((n, 784), np.float32), labels), notes)
    return (chosen.activation, chosen.scale), notes


def test_two_readings_the_probe_cannot_tell_apart_go_to_the_book_scale():
    chosen, notes = _choose({("relu", 1.0): 462, ("relu", 255.0): 463})  # 92.4 % vs 92.6 %: the reported case
    assert chosen == ("relu", 1.0)
    assert any("too close to tell apart" in n and "book's convention" in n for n in notes)
    # 92.6 % against 93.8 % (the sigmoid case seen with real digits): 6 more right, but the two readings disagree
    # on 26 digits (16 to 10); an even split would be 13 ± 2.5, so 16 is within 2 standard deviations
    chosen, _ = _choose({("sigmoid", 1.0): (463, 10), ("sigmoid", 255.0): (469, 0)})
    assert chosen == ("sigmoid", 1.0)


def test_a_clear_difference_still_wins():
    chosen, notes = _choose({("relu", 1.0): 456, ("relu", 255.0): 462})  # 6 more right and never fewer: it can tell
    assert chosen == ("relu", 255.0) and not any("too close" in n for n in notes)
    chosen, _ = _choose({("sigmoid", 1.0): 60, ("sigmoid", 255.0): 430})
    assert chosen == ("sigmoid", 255.0)


def test_ties_prefer_the_book_scale_then_sigmoid():
    chosen, _ = _choose({("sigmoid", 1.0): 395, ("sigmoid", 255.0): 380, ("relu", 1.0): 398, ("relu", 255.0): 396})
    assert chosen == ("sigmoid", 1.0)  # 79.0 % against 79.6 %, 3 digits apart: the book's sigmoid network
    chosen, _ = _choose({("sigmoid", 1.0): 100, ("sigmoid", 255.0): 460, ("relu", 1.0): 120, ("relu", 255.0): 458})
    assert chosen == ("sigmoid", 255.0)  # no [0, 1] reading is near the best: the order of activations decides


def test_a_lead_of_three_digits_or_two_standard_deviations_is_a_tie():
    chosen, _ = _choose({("relu", 1.0): 90, ("relu", 255.0): 93}, n=100)  # 3 digits: a tie however they split
    assert chosen == ("relu", 1.0)
    chosen, _ = _choose({("relu", 1.0): 89, ("relu", 255.0): 93}, n=100)  # 4 to 0: exactly 2 standard deviations
    assert chosen == ("relu", 1.0)
    chosen, _ = _choose({("relu", 1.0): 88, ("relu", 255.0): 93}, n=100)  # 5 to 0: beyond them
    assert chosen == ("relu", 255.0)


@pytest.mark.slow
def test_a_network_saved_as_a_book_pickle_reopens_with_pixels_in_0_1(tmp_path):
    ds = load_dataset("mnist-sample")
    config = TrainConfig(hidden=[100], epochs=1, seed=0)  # ReLU and Adam, as the window trains by default
    net = config.make_network()
    train(net, config.make_optimizer(), ds.x_train, ds.t_train, ds.x_test[:500], ds.t_test[:500], config.settings())
    path = save_weights(net, tmp_path / "mine.pkl")  # the book's plain dict: says nothing about scale or activation
    loaded = load_weights(path)
    assert (loaded.activation, loaded.input_scale) == ("relu", 1.0)
    assert (loaded.activation_source, loaded.scale_source) == ("guessed", "guessed")
    relu = {k: v for k, v in loaded.probe_accuracy.items() if k.startswith("relu")}
    assert abs(relu["relu, pixels [0,1]"] - relu["relu, pixels [0,255]"]) <= 0.02  # the probe's blind spot
    # what the person sees: the reopened network answers like the trained one, with probabilities that are not 100 %
    x = ds.x_test[:1000]
    np.testing.assert_allclose(loaded.network.predict(x), net.predict(x), rtol=1e-4, atol=1e-5)
    assert np.mean(loaded.network.predict(x).max(axis=1) > 0.9999) < 0.5
