"""The verdict line: a fixed number of lines, whatever the verdict; cut with "…", all of it in the tooltip."""
import pytest

from widgets.verdict_line import TONES, VerdictLine


@pytest.fixture
def verdict(show):
    return show(VerdictLine(2), 240, 60)


def test_a_short_verdict_is_shown_whole_with_its_details_as_tooltip(verdict):
    height = verdict.height()
    verdict.set_verdict("Reads as 7 (99.1 %).", "plain", "How the check works.")
    assert verdict.text() == verdict.full_text() == "Reads as 7 (99.1 %)." and not verdict.is_cut()
    assert verdict.toolTip() == "How the check works." and verdict.details() == "How the check works."
    assert verdict.height() == height


def test_a_long_verdict_is_cut_to_its_lines_and_read_in_full_in_the_tooltip(verdict):
    height = verdict.height()
    long = "Not like a digit: " + "3 separate pieces; shaped unlike any MNIST training digit; " * 3
    verdict.set_verdict(long, "error", "Details.")
    assert verdict.is_cut() and verdict.text().endswith("…") and verdict.height() == height
    assert long.strip() in verdict.toolTip() and "Details." in verdict.toolTip()
    verdict.set_verdict("<b>not bold</b>", "warning")  # plain text, never HTML
    assert verdict.text() == "<b>not bold</b>" and verdict.height() == height


def test_tones_colour_the_text(verdict):
    verdict.set_verdict("x", "error")
    assert verdict.palette().windowText().color() == TONES["error"]
    verdict.set_verdict("x", "plain")
    assert verdict.palette().windowText().color() != TONES["error"]
    assert verdict.tone() == "plain"
    with pytest.raises(ValueError, match="unknown tone"):
        verdict.set_verdict("x", "loud")
