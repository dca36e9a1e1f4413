"""The run legend beside a plot, the fixed-height label and the run list: plain values in, nothing moves."""
from PySide6.QtCore import Qt

from widgets.fitted_label import FittedLabel
from widgets.run_legend import LegendEntry, RunLegend
from widgets.run_list import RunList


def entries(n, state="normal"):
    return [LegendEntry(f"Adam lr 0.00{i} · batch 100 · seed {i}", "#1f77b4", state) for i in range(n)]


def test_the_legend_wraps_into_columns_and_takes_only_the_height_it_needs(qtbot):
    legend = RunLegend("nothing drawn")
    qtbot.addWidget(legend)
    one_row = legend.heightForWidth(800)
    legend.set_entries(entries(2))
    assert legend.heightForWidth(800) == one_row  # two names side by side in 800 px
    assert legend.heightForWidth(250) > one_row  # one column: two rows
    legend.set_entries(entries(9))
    rows = (legend.heightForWidth(800) - 8) // (legend.fontMetrics().height() + 2)
    assert rows <= 4  # names are shortened into more columns rather than a legend taller than the plot
    assert all(f"seed {i}" in legend.toolTip() for i in range(9))  # every full name is in the tooltip


def test_legend_entries_keep_their_state_and_names_stay_text(qtbot):
    legend = RunLegend()
    qtbot.addWidget(legend)
    legend.set_entries([LegendEntry("<b>run</b>\nnext", "#ff0000", "focus"), LegendEntry("b", "#00ff00", "odd")])
    assert [(e.label, e.state) for e in legend.entries()] == [("<b>run</b>\\nnext", "focus"), ("b", "normal")]
    legend.resize(400, legend.heightForWidth(400))
    legend.grab()  # paints without complaint


def test_a_fitted_label_keeps_its_height_and_cuts_long_text_with_an_ellipsis(qtbot):
    label = FittedLabel(2, "short", tooltip="what this says")
    qtbot.addWidget(label)
    label.resize(200, label.height())
    label.show()
    qtbot.waitExposed(label)
    height = label.height()
    assert label.text() == "short" and not label.is_cut() and label.toolTip() == "what this says"
    label.set_full_text("\n".join(["word " * 30] * 5))
    assert label.height() == height and label.is_cut() and label.text().endswith("…")
    assert label.heightForWidth(label.width()) <= height  # what it shows fits: no half line
    assert label.toolTip().count("word") == 150 and label.full_text().count("word") == 150  # all of it
    label.resize(2000, height)
    assert len(label.text()) > 100  # wider: more of it shows


def test_the_run_list_selects_several_runs_and_renames_without_toggling(qtbot):
    runs = RunList()
    qtbot.addWidget(runs)
    for key in "abc":
        runs.add_run(key, f"run {key}", "#123456")
    toggled, selected = [], []
    runs.runToggled.connect(lambda k, on: toggled.append((k, on)))
    runs.selectedRunsChanged.connect(selected.append)
    runs.set_selected(["c", "a"])
    assert runs.selected_keys() == ["a", "c"] and selected == [["a", "c"]] and runs.current_key() == "c"
    runs.set_label("a", "a better name", tooltip="its history")
    assert runs.label("a") == "a better name" and runs.tooltip("a") == "its history" and toggled == []
    runs.set_checked("b", False)
    assert toggled == [("b", False)] and runs.checked_keys() == ["a", "c"]
    runs.remove_run("c")
    assert runs.keys() == ["a", "b"] and selected[-1] == ["a"]
    assert runs.wordWrap() and runs.selectionMode() == runs.SelectionMode.ExtendedSelection
    assert runs.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
