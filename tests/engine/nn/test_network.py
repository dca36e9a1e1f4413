"""Networks of any depth, book-style parameter names, predict shapes, gradient check."""
import numpy as np
import pytest

from engine.train.gradcheck import check_gradients
from engine.nn.network import build_network, make_mlp

rng = np.random.default_rng(0)


@pytest.mark.parametrize("sizes", [[784, 50, 10], [784, 50, 100, 10], [784, 256, 128, 10]])
def test_params_use_the_book_names_and_shapes(sizes):
    net = make_mlp(sizes)
    n = len(sizes) - 1
    assert list(net.params) == [f"{k}{i}" for i in range(1, n + 1) for k in ("W", "b")]
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        assert net.params[f"W{i}"].shape == (a, b)
        assert net.params[f"b{i}"].shape == (b,)


def test_predict_one_image_and_a_batch():
    net = make_mlp([784, 30, 10])
    x = rng.random((5, 784), dtype=np.float32)
    batch = net.predict(x)
    assert batch.shape == (5, 10)
    np.testing.assert_allclose(batch.sum(axis=1), 1, rtol=1e-5)
    one = net.predict(x[2])
    assert one.shape == (10,)
    np.testing.assert_allclose(one, batch[2], rtol=1e-5)
    assert net.predict(x[2].reshape(28, 28)).shape == (10,)


def test_params_are_live_so_book_style_updates_change_the_network():
    net = make_mlp([784, 10, 10])
    x = rng.random((1, 784), dtype=np.float32)
    before = net.predict(x)
    net.params["W2"] *= 0  # the book's optimizer.update(network.params, grads) works in place
    net.params["b2"][:] = np.arange(10)
    after = net.predict(x)
    assert not np.allclose(before, after)
    assert after.argmax() == 9


def test_set_params_is_strict_about_names_and_shapes():
    net = make_mlp([784, 10, 10])
    good = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(ValueError, match="missing"):
        net.set_params({k: v for k, v in good.items() if k != "b2"})
    bad = dict(good, W2=np.zeros((10, 11)))
    with pytest.raises(ValueError, match=r"W2 has shape \(10, 11\)"):
        net.set_params(bad)


def test_spec_round_trip_rebuilds_the_same_function():
    net = make_mlp([784, 20, 15, 10], activation="tanh", loss="sum-of-squares")
    copy = build_network(net.spec(), params={k: v.copy() for k, v in net.params.items()})
    x = rng.random((3, 784), dtype=np.float32)
    np.testing.assert_array_equal(net.predict(x), copy.predict(x))
    assert copy.loss_name == "sum-of-squares"


@pytest.mark.parametrize("init, expected", [("fixed", 0.01), ("xavier", np.sqrt(1 / 784)), ("he", np.sqrt(2 / 784))])
def test_weight_init_std(init, expected):
    W1 = make_mlp([784, 400, 10], init=init).params["W1"]
    assert W1.std() == pytest.approx(expected, rel=0.02)
    assert W1.dtype == np.float32


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("loss", ["cross-entropy", "sum-of-squares"])
def test_backprop_matches_numerical_gradient(activation, loss):
    net = make_mlp([784, 6, 5, 10], activation, loss, seed=1, init="xavier")
    x = rng.random((3, 784))
    t = np.array([1, 7, 3])
    report = check_gradients(net, x, t)
    assert [p.name for p in report.params] == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert report.max_rel_error < 1e-5, report.to_dict()
    assert report.numerical_seconds > report.backprop_seconds


def test_gradient_check_reports_a_wrong_backward():
    net = make_mlp([784, 5, 10], "sigmoid", seed=2)
    x, t = rng.random((2, 784)), np.array([0, 1])
    from engine.nn import layers as L

    saved = L.Sigmoid.backward
    try:
        L.Sigmoid.backward = lambda self, dout: saved(self, dout) * 1.5
        bad = check_gradients(net, x, t)
    finally:
        L.Sigmoid.backward = saved
    worst = {p.name: p.max_rel_error for p in bad.params}
    assert worst["W1"] > 0.1 and worst["W2"] < 1e-5


def test_gradient_check_can_be_cancelled():
    net = make_mlp([784, 5, 10])
    calls = []

    def progress(done, total):
        calls.append((done, total))
        return False

    report = check_gradients(net, rng.random((2, 784)), np.array([0, 1]), progress=progress)
    assert report.cancelled and calls and calls[0][1] == sum(p.size for p in net.params.values())


def test_input_scale_multiplies_inputs():
    net = make_mlp([784, 10, 10])
    x = rng.random((2, 784), dtype=np.float32)
    raw = build_network(dict(net.spec(), input_scale=255.0), params={k: v.copy() for k, v in net.params.items()})
    raw.params["W1"][...] = net.params["W1"] / 255.0
    np.testing.assert_allclose(raw.predict(x), net.predict(x), rtol=1e-4)


def test_input_shift_is_added_after_the_scale_and_kept_in_the_spec():
    """PyTorch's Normalize((0.1307,), (0.3081,)) is x / 0.3081 - 0.1307 / 0.3081: a scale, then a shift."""
    net = make_mlp([784, 10, 10], seed=2)
    spec = dict(net.spec(), input_scale=1 / 0.3081, input_shift=-0.1307 / 0.3081)
    normalised = build_network(spec, params={k: v.copy() for k, v in net.params.items()})
    x = rng.random((3, 784), dtype=np.float32)
    np.testing.assert_allclose(normalised.scores(x), net.scores((x - 0.1307) / 0.3081), rtol=1e-5, atol=1e-6)
    assert normalised.spec()["input_shift"] == pytest.approx(-0.1307 / 0.3081)
    assert normalised.copy().input_shift == normalised.input_shift
    assert "input_shift" not in net.spec()  # unshifted networks describe themselves as before


def test_wrong_input_size_is_a_clear_error():
    with pytest.raises(ValueError, match="does not fit"):
        make_mlp([784, 10, 10]).predict(np.zeros(100))


def test_gradient_check_on_a_random_subset_estimates_the_full_time():
    net = make_mlp([784, 20, 10], "sigmoid", seed=3)
    report = check_gradients(net, rng.random((2, 784)), np.array([4, 5]), per_param=30, seed=1)
    assert report.checked == {"W1": 30, "b1": 20, "W2": 30, "b2": 10}  # b1/b2 smaller than 30: all of them
    assert not report.complete and report.max_rel_error < 1e-5
    per_element = report.numerical_seconds / report.elements_done
    assert report.estimated_full_numerical_seconds == pytest.approx(per_element * (784 * 20 + 20 + 200 + 10))
    with pytest.raises(ValueError, match="per_param"):
        check_gradients(net, rng.random((2, 784)), np.array([4, 5]), per_param=0)
