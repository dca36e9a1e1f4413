"""Run titles a person can tell apart, and a run's history in words."""
from engine.train.config import TrainConfig
from engine.train.run_names import lr_text, run_history, run_title, unique_titles


def settings(**changes) -> dict:
    return {**TrainConfig(hidden=[100]).to_dict(), **changes}


def test_a_title_names_optimizer_learning_rate_batch_and_seed():
    assert run_title(settings(), "Run 1") == "Adam lr 0.001 · batch 100 · seed 0"
    assert run_title(settings(optimizer="sgd", lr=0.1, batch_size=32, seed=7), "x") == "SGD lr 0.1 · batch 32 · seed 7"


def test_learning_rate_changes_are_part_of_the_title():
    changes = [{"iteration": 812, "from": 0.001, "to": 0.05}, {"iteration": 1500, "from": 0.05, "to": 0.01}]
    s = settings(lr=0.01, lr_changes=changes)  # "lr" may hold the last rate: the history starts at the first
    assert lr_text(s) == "lr 0.001→0.05@812→0.01@1500"
    assert run_title(s, "x") == "Adam lr 0.001→0.05@812→0.01@1500 · batch 100 · seed 0"


def test_runs_without_settings_keep_their_name():
    assert run_title({}, "my run") == "my run"
    assert run_title({"optimizer": 5, "lr": "fast"}, "odd\x1b[2J file") == "odd\\x1b[2J file"  # text, made printable


def test_equal_titles_get_what_differs_then_a_number():
    runs = [(settings(), "a", 500), (settings(hidden=[30]), "b", 500), (settings(optimizer="sgd"), "c", 500),
            (settings(), "d", 500), (settings(), "e", 900)]
    assert unique_titles(runs) == [
        "Adam lr 0.001 · batch 100 · seed 0 · 784-100-10 · 500 iterations",
        "Adam lr 0.001 · batch 100 · seed 0 · 784-30-10 · 500 iterations",
        "SGD lr 0.001 · batch 100 · seed 0",
        "Adam lr 0.001 · batch 100 · seed 0 · 784-100-10 · 500 iterations #2",
        "Adam lr 0.001 · batch 100 · seed 0 · 784-100-10 · 900 iterations",
    ]
    assert unique_titles([(settings(), "a", 5), (settings(), "b", 5)]) == [
        "Adam lr 0.001 · batch 100 · seed 0", "Adam lr 0.001 · batch 100 · seed 0 #2"]


def test_history_tells_each_learning_rate_change():
    s = settings(lr_changes=[{"iteration": 812, "from": 0.001, "to": 0.05}], dataset="mnist-sample")
    assert run_history(s, "Run 3", 1500, "stopped", 0.9712) == [
        "Run 3",
        "network 784-100-10 · ReLU · Cross-entropy",
        "Adam · lr 0.001 · batch 100 · seed 0 · 10 epochs · on mnist-sample",
        "lr 0.001 → 0.05 at iteration 812",
        "1,500 iterations, stopped, test accuracy 97.1%",
    ]
    assert run_history({}, "imported", 3, "finished", None) == ["imported", "3 iterations, finished"]


def test_many_learning_rate_changes_keep_the_title_short():
    rates = [0.001, 0.002, 0.004, 0.008, 0.016, 0.032]
    changes = [{"iteration": 100 * i, "from": a, "to": b} for i, (a, b) in enumerate(zip(rates, rates[1:]), 1)]
    assert lr_text(settings(lr_changes=changes)) == "lr 0.001→0.002@100→…→0.032@500 (5 changes)"
    assert len(run_history(settings(lr_changes=changes), "x", 600, "finished", None)) == 4 + 5  # every change told


def test_an_optimizer_swap_and_a_continued_network_are_told_too():
    s = settings(optimizer="sgd", lr=0.05, lr_changes=[{"iteration": 812, "from": 0.001, "to": 0.05}],
                 optimizer_changes=[{"iteration": 500, "from": "adam", "to": "sgd"}],
                 fine_tune_of="book.pkl", architecture="784-50-100-10 sigmoid", network="784-50-100-10 sigmoid")
    assert run_title(s, "x") == "Adam→SGD@500 lr 0.001→0.05@812 · batch 100 · seed 0"
    history = run_history(s, "Run 2", 900, "finished", None)
    assert history[1:3] == ["network 784-50-100-10 sigmoid · ReLU · Cross-entropy", "continued training book.pkl"]
    assert history[-3:-1] == ["optimizer Adam → SGD at iteration 500", "lr 0.001 → 0.05 at iteration 812"]


def test_settings_from_a_hostile_file_give_a_short_title_and_no_error():
    s = {"optimizer": "<b>" + "x" * 500, "lr": 10**400, "batch_size": 10**300, "seed": True, "hidden": "many",
         "lr_changes": [{"iteration": 10**300, "from": 1, "to": 2}, "junk"]}
    title = run_title(s, "file")
    assert len(title) < 80 and title.startswith("<b>xxx")
    assert unique_titles([(s, "a", 1), (s, "b", 1)])[1].endswith("#2")
    assert run_history(s, "a", 1, "finished", None)[-1] == "1 iteration, finished"


def test_a_continued_run_and_a_new_one_are_told_apart_in_words_not_placeholders():
    runs = [(settings(), "a", 100), (settings(fine_tune_of="m.npz"), "b", 100), (settings(dataset=None), "c", 100)]
    titles = unique_titles(runs)
    assert titles[0].endswith(" · new network") and titles[1].endswith(" · continued m.npz")
    assert not any("—" in t for t in titles)  # a run that does not say gets nothing, not a dash
