"""Every optimizer minimises a simple quadratic; hyper-parameters are validated and changeable."""
import numpy as np
import pytest

from engine.nn.network import make_mlp
from engine.nn.optimizers import OPTIMIZERS, SGD, Adam, FlatParams, make_optimizer

# f(x, y) = x²/20 + y², the book's optimizer comparison, from (-7, 2)
GRAD = lambda p: np.array([p[0] / 10.0, 2.0 * p[1]])  # noqa: E731
F = lambda p: p[0] ** 2 / 20.0 + p[1] ** 2  # noqa: E731
LR = {"sgd": 0.95, "momentum": 0.1, "nesterov": 0.1, "adagrad": 1.5, "rmsprop": 0.1, "adam": 0.3}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_minimises_the_books_quadratic(name):
    opt = make_optimizer(name, lr=LR[name])
    params = {"p": np.array([-7.0, 2.0])}
    start = F(params["p"])
    for _ in range(300):
        opt.update(params, {"p": GRAD(params["p"])})
    assert F(params["p"]) < 1e-2 * start, (name, params["p"])


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_update_is_in_place_and_state_is_lazy(name):
    opt = make_optimizer(name)
    p = np.ones(3)
    params = {"W": p}
    opt.update(params, {"W": np.full(3, 0.5)})
    assert params["W"] is p and np.all(p < 1)


def test_sgd_step_is_lr_times_gradient():
    params = {"W": np.array([1.0, 2.0])}
    SGD(lr=0.1).update(params, {"W": np.array([10.0, -10.0])})
    np.testing.assert_allclose(params["W"], [0.0, 3.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_and_momentum_match_the_books_lines_bit_for_bit_and_leave_the_gradients_alone(dtype):
    """``W -= lr * dW`` and ``v = momentum * v - lr * dW; W += v`` (common/optimizer.py), for a whole network's
    flat buffer, over steps whose scratch product is reused: the same bits, and the gradients stay as they were."""
    net = make_mlp([7, 5, 3], dtype=dtype, seed=2)
    rng = np.random.default_rng(3)
    for name, hp in (("sgd", {"lr": 0.1}), ("momentum", {"lr": 0.05, "momentum": 0.9})):
        ours, params = make_optimizer(name, **hp), net.params
        book, v = {k: a.copy() for k, a in params.items()}, {k: np.zeros_like(a) for k, a in params.items()}
        for _ in range(4):
            net.grads = grads = FlatParams.gather({k: rng.normal(size=a.shape).astype(dtype) for k, a in params.items()})
            kept = grads.flat.copy()
            ours.update(params, grads)
            for k, g in grads.items():
                if name == "sgd":
                    book[k] -= hp["lr"] * g
                else:
                    v[k] = hp["momentum"] * v[k] - hp["lr"] * g
                    book[k] += v[k]
            np.testing.assert_array_equal(grads.flat, kept)
            for k, a in params.items():
                np.testing.assert_array_equal(a, book[k], err_msg=f"{name} {k}")


@pytest.mark.parametrize(
    "kwargs, fragment",
    [({"lr": -1}, "-1"), ({"lr": 0}, "lr"), ({"lr": float("nan")}, "nan"), ({"beta1": 1.0}, "beta1"), ({"lr": "x"}, "'x'")],
)
def test_bad_hyper_parameters_raise_with_the_value(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        Adam(**kwargs)


def test_hyper_parameters_change_between_iterations():
    opt = SGD(lr=0.1)
    params = {"W": np.zeros(1)}
    opt.update(params, {"W": np.ones(1)})
    opt.set(lr=1.0)
    opt.update(params, {"W": np.ones(1)})
    np.testing.assert_allclose(params["W"], [-1.1])
    with pytest.raises(ValueError, match="momentum"):
        opt.set(momentum=0.5)  # SGD has none: say so rather than ignore it


def test_unknown_optimizer_name_lists_the_choices():
    with pytest.raises(ValueError, match="adam"):
        make_optimizer("adamw")


class BookNesterov:
    """The book's rule (common/optimizer.py), written out: step with the old velocity, then update it."""

    def __init__(self, lr, momentum):
        self.lr, self.momentum, self.v = lr, momentum, None

    def update(self, params, grads):
        if self.v is None:
            self.v = {k: np.zeros_like(v) for k, v in params.items()}
        m, lr = self.momentum, self.lr
        for key in params:
            params[key] += m * m * self.v[key]
            params[key] -= (1 + m) * lr * grads[key]
            self.v[key] *= m
            self.v[key] -= lr * grads[key]


def test_nesterov_follows_the_books_rule_step_by_step():
    ours, ref = make_optimizer("nesterov", lr=0.1, momentum=0.9), BookNesterov(0.1, 0.9)
    p, q = {"p": np.array([-7.0, 2.0])}, {"p": np.array([-7.0, 2.0])}
    for step in range(30):
        ours.update(p, {"p": GRAD(p["p"])})
        ref.update(q, {"p": GRAD(q["p"])})
        np.testing.assert_allclose(p["p"], q["p"], rtol=0, atol=1e-12, err_msg=f"step {step + 1}")
