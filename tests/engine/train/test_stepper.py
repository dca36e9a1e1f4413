"""The Stepper both train() and race() drive: epochs, batches, divergence, what is reported; Progress.merge."""
import numpy as np
import pytest

from engine.nn.network import make_mlp
from engine.nn.optimizers import SGD, Adam
from engine.train.loop import Progress, Stepper, TrainSettings, iterations_per_epoch, train
from engine.train.stepper import counted


@pytest.mark.parametrize("n, batch, expected", [(60_000, 100, 600), (230, 50, 4), (230, 230, 1), (5, 100, 1),
                                                (1, 1, 1), (101, 100, 1), (199, 100, 1), (200, 100, 2)])
def test_iterations_per_epoch_drops_the_short_final_batch(n, batch, expected):
    assert iterations_per_epoch(n, batch) == expected


@pytest.mark.parametrize("n, batch", [(0, 10), (10, 0), (10, -5)])
def test_iterations_per_epoch_refuses_empty_epochs(n, batch):
    with pytest.raises(ValueError):
        iterations_per_epoch(n, batch)


def test_stepper_walks_epochs_and_evaluates_each_one(blobs):
    x, t = blobs(230)
    stepper = Stepper(make_mlp([784, 10, 10]), SGD(0.1), x, t, x[:30], t[:30],
                      TrainSettings(batch_size=50, epochs=3, eval_train_limit=100))
    assert (stepper.iterations_per_epoch, stepper.total_iterations, stepper.epoch) == (4, 12, 1)
    ended = []
    while stepper.running:
        stepper.step()
        ended.append(stepper.epoch_ended)
    assert ended == [False, False, False, True] * 3
    assert stepper.status == "finished" and stepper.message == "finished 3 epochs (12 iterations)"
    assert [(e.epoch, e.iteration) for e in stepper.epochs] == [(1, 4), (2, 8), (3, 12)]
    assert all(0 <= e.train_accuracy <= 1 and e.test_accuracy is not None for e in stepper.epochs)
    assert len(stepper.losses) == 12 and np.all(np.isfinite(stepper.losses))
    with pytest.raises(RuntimeError, match="finished"):
        stepper.step()


def test_an_iteration_limit_ends_with_a_partial_epoch_that_is_still_evaluated(blobs):
    x, t = blobs(230)
    stepper = Stepper(make_mlp([784, 10, 10]), SGD(0.1), x, t, x[:30], t[:30],
                      TrainSettings(batch_size=50, epochs=2), iterations=6)
    while stepper.running:
        stepper.step()
    assert stepper.iteration == 6 and [(e.epoch, e.iteration) for e in stepper.epochs] == [(1, 4), (2, 6)]


def test_unreported_losses_and_epochs_are_handed_out_once(blobs):
    x, t = blobs(230)
    stepper = Stepper(make_mlp([784, 10, 10]), SGD(0.1), x, t, settings=TrainSettings(batch_size=50, epochs=2))
    for _ in range(3):
        stepper.step()
    start, losses, epochs = stepper.take_unreported()
    assert start == 0 and np.array_equal(losses, stepper.losses) and epochs == []
    losses[:] = -1  # a copy: the stepper's record is untouched
    assert np.all(stepper.losses > 0)
    stepper.step()
    start, losses, epochs = stepper.take_unreported()
    assert start == 3 and len(losses) == 1 and [e.epoch for e in epochs] == [1]
    assert stepper.unreported_iterations == 0 and stepper.take_unreported()[1].size == 0


def test_messages_count_one_epoch_and_one_iteration_in_the_singular(blobs):
    x, t = blobs(100)
    stepper = Stepper(make_mlp([784, 10, 10]), SGD(0.1), x, t, settings=TrainSettings(batch_size=100, epochs=1))
    stepper.step()
    assert stepper.status == "finished" and stepper.message == "finished 1 epoch (1 iteration)"
    assert (counted(1, "epoch"), counted(0, "epoch"), counted(4433, "iteration")) == \
        ("1 epoch", "0 epochs", "4,433 iterations")


def test_stop_and_divergence_end_the_run(blobs):
    x, t = blobs(230)
    stepper = Stepper(make_mlp([784, 10, 10]), SGD(0.1), x, t, settings=TrainSettings(batch_size=50))
    stepper.step()
    stepper.stop()
    assert stepper.status == "stopped" and stepper.message == "stopped by request after 1 iteration"
    net = make_mlp([784, 50, 10])
    start = {k: v.copy() for k, v in net.params.items()}
    blown = Stepper(net, SGD(1e6), x, t, settings=TrainSettings(batch_size=50, epochs=5))
    while blown.running:
        blown.step()
    assert blown.status == "diverged" and "The learning rate, 1e+06, is probably too large" in blown.message
    assert "(learning rate" not in blown.message  # the rate is named once, not "The learning rate (learning rate …)"
    assert "weights from the start of epoch 1 were put back" in blown.message
    assert all(np.array_equal(v, start[k]) for k, v in net.params.items())
    # the message counts what the plot and the progress line count: the iterations trained, then the one that blew up
    n = blown.iteration
    assert blown.message.startswith(f"training diverged after {n} iteration{'s' if n != 1 else ''}: "
                                    f"the loss of iteration {n + 1} was ")
    assert len(blown.losses) == n


def test_train_reports_every_report_every_iterations_and_at_epoch_ends(blobs):
    x, t = blobs(200)
    reports = []
    result = train(make_mlp([784, 10, 10]), Adam(0.01), x, t,
                   settings=TrainSettings(batch_size=20, epochs=2, report_every=4), callback=reports.append)
    assert [p.iteration for p in reports] == [4, 8, 10, 14, 18, 20]
    assert [[e.epoch for e in p.epochs] for p in reports] == [[], [], [1], [], [], [2]]
    assert result.iterations == 20


def test_merging_progress_reports_gives_one_report_of_everything(blobs):
    x, t = blobs(200)
    reports = []
    result = train(make_mlp([784, 10, 10]), Adam(0.01), x, t, x[:20], t[:20],
                   settings=TrainSettings(batch_size=20, epochs=3, report_every=3), callback=reports.append)
    merged = reports[0]
    for p in reports[1:]:
        merged = merged.merge(p)
    assert np.array_equal(merged.losses, result.losses)
    assert merged.epochs == result.epochs
    assert (merged.iteration, merged.epoch, merged.elapsed) == (30, 3, reports[-1].elapsed)
    assert (merged.iterations_per_epoch, merged.total_iterations) == (10, 30)
    assert [len(p.losses) for p in reports] == [3, 3, 3, 1] * 3  # nothing was merged in place
    with pytest.raises(ValueError, match="cannot merge"):
        reports[0].merge(reports[2])


def test_merge_keeps_the_later_pause_flag():
    a = Progress(3, 1, 10, 20, np.array([3.0, 2.0, 1.0]), [], 0.5)
    b = Progress(3, 1, 10, 20, np.zeros(0), [], 0.6, paused=True)
    m = a.merge(b)
    assert m.paused and m.iteration == 3 and m.elapsed == 0.6
    assert np.array_equal(m.losses, [3.0, 2.0, 1.0])


@pytest.mark.parametrize("limit", [50, None])
def test_train_metrics_use_a_subset_drawn_from_seed_plus_one(blobs, limit):
    x, t = blobs(200)
    net = make_mlp([784, 10, 10], seed=2)
    result = train(net, SGD(0.1), x, t, settings=TrainSettings(batch_size=20, epochs=1, seed=6, eval_train_limit=limit))
    sel = np.sort(np.random.default_rng(7).choice(200, 50, replace=False)) if limit else np.arange(200)
    assert (result.epochs[0].train_loss, result.epochs[0].train_accuracy) == net.evaluate(x[sel], t[sel])


def test_a_stop_asked_for_during_an_epoch_evaluation_ends_the_run_within_one_chunk(blobs, monkeypatch):
    """Closing the window mid-evaluation must not wait until a large test set has been scored."""
    import engine.train.stepper as stepper_module

    monkeypatch.setattr(stepper_module, "EVAL_CHUNK", 10)
    x, t = blobs(200)
    network = make_mlp([784, 10, 10])
    chunks = []
    real_evaluate = network.evaluate

    def counting_evaluate(xs, ts, *args):
        chunks.append(len(xs))
        return real_evaluate(xs, ts, *args)

    network.evaluate = counting_evaluate
    stepper = Stepper(network, SGD(0.1), x, t, x, t, TrainSettings(batch_size=50, epochs=2, eval_train_limit=0),
                      cancel=lambda: len(chunks) >= 3)
    for _ in range(4):
        stepper.step()
    assert chunks == [10, 10, 10]  # three of the twenty test chunks, then the stop was noticed
    assert stepper.status == "stopped" and stepper.epochs == []


def test_chunked_evaluation_gives_the_networks_own_numbers(blobs):
    x, t = blobs(2500)
    network = make_mlp([784, 10, 10])
    stepper = Stepper(network, SGD(0.1), x[:100], t[:100], x, t, TrainSettings(batch_size=100, epochs=1,
                                                                                    eval_train_limit=0))
    stepper.step()
    loss, accuracy = network.evaluate(x, t)
    assert stepper.epochs[0].test_accuracy == accuracy
    assert stepper.epochs[0].test_loss == pytest.approx(loss, rel=1e-12)


def test_the_stepper_accepts_huge_finite_pixels_and_refuses_any_infinity():
    big = np.full((20, 784), 3e38, dtype=np.float32)  # finite, though their sum overflows float32
    t = np.zeros(20, dtype=np.int64)
    Stepper(make_mlp([784, 5, 10]), SGD(0.1), big, t, settings=TrainSettings(batch_size=10, epochs=1))
    both = big.copy()
    both[3, 7], both[11, 0] = np.inf, -np.inf  # their sum would be NaN, as a single NaN's is
    with pytest.raises(ValueError, match="NaN or infinite"):
        Stepper(make_mlp([784, 5, 10]), SGD(0.1), both, t)
