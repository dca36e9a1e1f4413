"""Names and histories of runs a person can tell apart: "Adam lr 0.001→0.05@812 · batch 100 · seed 0".

A run's settings (``RunRecord.settings``, a ``TrainConfig.to_dict()`` plus extras such as
``lr_changes``) say how it was trained; these functions turn them into a short title for lists and
legends, make the titles of several runs unique (first by the settings that differ, then #2, #3)
and spell out a run's history ("lr 0.001 → 0.05 at iteration 812"). Settings may come from a file
someone else wrote: values of the wrong type are left out, text is shortened and made printable.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Callable, Sequence

from engine import registry
from engine.train.config import CNN_NAMES
from engine.util import printable

SEP = " · "
MAX_STEPS = 3  # learning-rate changes spelled out in a title; more are shortened to the first and last
MAX_NAME = 40  # characters of a file-derived word (an optimizer or dataset name) in a title


def _number(value) -> float | None:
    """A finite int or float (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:  # an integer of hundreds of digits in a file
        return None
    return value if math.isfinite(value) else None


def _int(value) -> int | None:
    """An int (not a bool) of at most 18 digits, else None."""
    ok = isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**18
    return value if ok else None


def _iterations(n: int) -> str:
    return f"{n:,} iteration" + ("" if n == 1 else "s")


def _word(value) -> str | None:
    return printable(value, MAX_NAME) if isinstance(value, str) and value else None


def lr_changes(settings: dict) -> list[dict]:
    """The run's learning-rate changes, ``[{"iteration", "from", "to"}, ...]``; [] if none or malformed."""
    changes = settings.get("lr_changes")
    if not isinstance(changes, list):
        return []
    out = []
    for c in changes:
        if isinstance(c, dict) and _int(c.get("iteration")) is not None and \
                _number(c.get("from")) is not None and _number(c.get("to")) is not None:
            out.append({"iteration": c["iteration"], "from": float(c["from"]), "to": float(c["to"])})
    return out


def optimizer_changes(settings: dict) -> list[dict]:
    """The run's optimizer swaps, ``[{"iteration", "from", "to"}, ...]`` with optimizer names; [] if none."""
    changes = settings.get("optimizer_changes")
    if not isinstance(changes, list):
        return []
    return [{"iteration": c["iteration"], "from": _word(c.get("from")), "to": _word(c.get("to"))}
            for c in changes if isinstance(c, dict) and _int(c.get("iteration")) is not None
            and _word(c.get("from")) and _word(c.get("to"))]


def lr_change_text(change: dict) -> str:
    """'lr 0.001 → 0.05 at iteration 812'."""
    return f"lr {change['from']:g} → {change['to']:g} at iteration {change['iteration']:,}"


def lr_text(settings: dict) -> str | None:
    """'lr 0.001', or with its changes 'lr 0.001→0.05@812→0.01@1500'; None when the run has no learning rate."""
    changes = lr_changes(settings)
    start = changes[0]["from"] if changes else _number(settings.get("lr"))
    if start is None:
        return None
    steps = [f"→{c['to']:g}@{c['iteration']}" for c in changes]
    if len(steps) > MAX_STEPS:  # a slider dragged about: its first and last changes and how many
        steps = [steps[0], "→…", steps[-1], f" ({len(steps)} changes)"]
    return "lr " + f"{start:g}" + "".join(steps)


def network_text(settings: dict) -> str | None:
    """'784-100-10', 'small CNN', 'LeNet-style CNN', or what the run says its network was (e.g. a network opened from a file)."""
    if settings.get("architecture") in CNN_NAMES:
        return CNN_NAMES[settings["architecture"]]
    hidden = settings.get("hidden")
    if settings.get("architecture", "mlp") == "mlp" and isinstance(hidden, list) and hidden and \
            all(_int(h) is not None for h in hidden):
        return "-".join(map(str, [784, *hidden, 10]))
    return _word(settings.get("network")) or _word(settings.get("architecture"))


def _choice(choices, value) -> str | None:
    word = _word(value)
    return None if word is None else printable(registry.label(choices, word), MAX_NAME)


def optimizer_text(settings: dict) -> str | None:
    """'Adam', or with its swaps 'Adam→SGD@500'."""
    swaps = optimizer_changes(settings)
    first = _choice(registry.OPTIMIZER_CHOICES, swaps[0]["from"] if swaps else settings.get("optimizer"))
    if first is None:
        return None
    return first + "".join(f"→{_choice(registry.OPTIMIZER_CHOICES, c['to'])}@{c['iteration']}" for c in swaps)


def run_title(settings: dict, fallback: str) -> str:
    """Optimizer, learning rate (and their changes), batch and seed; ``fallback`` when the settings name none."""
    optimizer = optimizer_text(settings)
    lr = lr_text(settings)
    if optimizer is None and lr is None:
        return printable(fallback, 80)
    parts = [" ".join(p for p in (optimizer, lr) if p)]
    if _int(settings.get("batch_size")) is not None:
        parts.append(f"batch {settings['batch_size']}")
    if _int(settings.get("seed")) is not None:
        parts.append(f"seed {settings['seed']}")
    return SEP.join(parts)


def _param(key: str, text: str, optimizers: tuple[str, ...] = ()) -> Callable[[dict, int], str | None]:
    def get(settings: dict, _n: int) -> str | None:
        if optimizers and settings.get("optimizer") not in optimizers:
            return None
        value = _number(settings.get(key))
        return None if value is None else f"{text} {value:g}"
    return get


# what may tell two runs with the same title apart, in the order it is added to their titles
DISTINGUISHERS: tuple[Callable[[dict, int], str | None], ...] = (
    lambda s, _n: network_text(s),
    lambda s, _n: _choice(registry.ACTIVATION_CHOICES, s.get("activation")),
    lambda s, _n: _choice(registry.LOSS_CHOICES, s.get("loss")),
    lambda s, _n: None if _word(s.get("init")) is None else f"init {_word(s.get('init'))}",
    lambda s, _n: None if _word(s.get("schedule")) is None else f"lr {_word(s.get('schedule'))}",
    _param("momentum", "momentum", ("momentum", "nesterov")),
    _param("beta1", "β1", ("adam",)),
    _param("beta2", "β2", ("adam",)),
    lambda s, _n: _word(s.get("dataset")),
    lambda s, _n: "new network" if _word(s.get("fine_tune_of")) is None else f"continued {_word(s.get('fine_tune_of'))}",
    lambda _s, n: _iterations(n),
)


def unique_titles(runs: Sequence[tuple[dict, str, int]]) -> list[str]:
    """Titles for ``(settings, name, iterations)`` runs, unique: equal titles get what differs, then #2, #3."""
    titles = [run_title(settings, name) for settings, name, _ in runs]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, title in enumerate(titles):
        groups[title].append(i)
    for members in groups.values():
        if len(members) < 2:
            continue
        for distinguish in DISTINGUISHERS:
            values = [distinguish(runs[i][0], runs[i][2]) for i in members]
            if len(set(values)) > 1:
                for i, value in zip(members, values):
                    if value:  # a run that does not say (an old file) gets nothing rather than a placeholder
                        titles[i] += SEP + value
    seen: dict[str, int] = defaultdict(int)
    out = []
    for title in titles:
        seen[title] += 1
        out.append(title if seen[title] == 1 else f"{title} #{seen[title]}")
    return out


def run_events(settings: dict) -> list[str]:
    """What was changed during the run, in order: 'lr 0.001 → 0.05 at iteration 812', 'optimizer Adam → SGD …'."""
    events = [(c["iteration"], lr_change_text(c)) for c in lr_changes(settings)]
    events += [(c["iteration"], f"optimizer {_choice(registry.OPTIMIZER_CHOICES, c['from'])} → "
                f"{_choice(registry.OPTIMIZER_CHOICES, c['to'])} at iteration {c['iteration']:,}")
               for c in optimizer_changes(settings)]
    return [text for _, text in sorted(events, key=lambda e: e[0])]


def run_history(settings: dict, name: str, iterations: int, status: str,
                test_accuracy: float | None) -> list[str]:
    """What happened in the run, one fact a line: its network, its training settings, each lr change, its end."""
    lines = [printable(name, 200)]
    network = SEP.join(p for p in (network_text(settings),
                                   _choice(registry.ACTIVATION_CHOICES, settings.get("activation")),
                                   _choice(registry.LOSS_CHOICES, settings.get("loss"))) if p)
    if network:
        lines.append("network " + network)
    if _word(settings.get("fine_tune_of")):
        lines.append(f"continued training {_word(settings.get('fine_tune_of'))}")
    changes, swaps = lr_changes(settings), optimizer_changes(settings)
    first = swaps[0]["from"] if swaps else settings.get("optimizer")
    training = [p for p in (_choice(registry.OPTIMIZER_CHOICES, first),
                            f"lr {changes[0]['from']:g}" if changes else lr_text(settings)) if p]
    if _word(settings.get("schedule")) not in (None, "constant"):
        training.append(f"{_word(settings['schedule'])} schedule")
    for key, text in (("batch_size", "batch {}"), ("seed", "seed {}"), ("epochs", "{} epochs")):
        if _int(settings.get(key)) is not None:
            training.append(text.format(settings[key]))
    if _word(settings.get("dataset")):
        training.append(f"on {_word(settings.get('dataset'))}")
    if training:
        lines.append(SEP.join(training))
    lines += run_events(settings)
    end = f"{_iterations(iterations)}, {printable(status, MAX_NAME)}"
    if test_accuracy is not None:
        end += f", test accuracy {test_accuracy:.1%}"
    lines.append(end)
    return lines
