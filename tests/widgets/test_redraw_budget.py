"""Redraws held to a share of the GUI thread's time: the cost is measured, the interval stretched to fit."""
import pytest

from widgets.redraw_budget import LONGEST_MS, PAINT_WINDOW, SHARE, RedrawBudget


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def redraw(budget: RedrawBudget, clock: FakeClock, data: float, paints: tuple = ()) -> None:
    """One redraw that hands data over for ``data`` seconds, then the paints it causes."""
    budget.redraw_begins()
    with budget.measure():
        clock.now += data
    for seconds in paints:
        with budget.paint():
            clock.now += seconds
    clock.now += 0.3  # time between redraws that is not theirs: not counted


def budget_and_clock(**kwargs) -> tuple[RedrawBudget, FakeClock]:
    clock = FakeClock()  # one clock for CPU and wall time: the GUI thread is busy all the time it measures
    return RedrawBudget(clock=clock, wall=clock, **kwargs), clock


def test_the_cost_of_a_redraw_is_its_data_and_its_paints_and_only_theirs():
    budget, clock = budget_and_clock(share=0.01)
    assert budget.cost == 0.0 and budget.interval_ms(500) == 500  # nothing measured: the interval asked for
    redraw(budget, clock, 0.004, (0.006,))
    assert budget.cost == 0.0  # a redraw's cost is known when the next one begins (its paints come after it)
    redraw(budget, clock, 0.002)
    assert budget.cost == pytest.approx(0.010)
    assert budget.interval_ms(500) == pytest.approx(1000.0)  # 10 ms is 1 % of a second
    assert budget.interval_ms(2000) == 2000  # never more often than asked


def test_the_cost_follows_dearer_and_cheaper_redraws_within_a_few():
    budget, clock = budget_and_clock(share=0.01)
    for _ in range(3):
        redraw(budget, clock, 0.002)
    redraw(budget, clock, 0.002)
    assert budget.interval_ms(500) == 500  # 2 ms per redraw fits in 1 % of half a second
    for _ in range(6):
        redraw(budget, clock, 0.020)
    redraw(budget, clock, 0.0)
    assert budget.interval_ms(500) > 1900  # now about 20 ms a redraw: two seconds apart
    for _ in range(8):
        redraw(budget, clock, 0.001)
    redraw(budget, clock, 0.0)
    assert budget.interval_ms(500) == 500


def test_time_outside_measured_blocks_and_a_failing_block_are_handled():
    budget, clock = budget_and_clock()
    budget.redraw_begins()
    with pytest.raises(RuntimeError):
        with budget.measure():
            clock.now += 0.005
            raise RuntimeError("a paint that failed still took its time")
    clock.now += 1.0
    budget.redraw_begins()
    assert budget.cost == pytest.approx(0.005)
    assert budget.interval_ms(0) == pytest.approx(1000 * 0.005 / SHARE)


def test_paints_long_after_a_redraw_are_not_its_cost_and_the_interval_has_a_ceiling():
    budget, clock = budget_and_clock(share=0.01)
    redraw(budget, clock, 0.002, (0.003,))
    clock.now += 600.0  # ten minutes without training; the person resizes the window: dear paints, not redraws'
    for _ in range(50):
        with budget.paint():
            clock.now += 0.02
    clock.now += PAINT_WINDOW
    redraw(budget, clock, 0.0)
    assert budget.cost == pytest.approx(0.005)  # the last redraw's own data and paint
    for _ in range(10):
        redraw(budget, clock, 1.0)  # absurdly dear redraws: the view still shows progress every few seconds
    assert budget.interval_ms(500) == LONGEST_MS


@pytest.mark.parametrize("share", [0, -0.1, 1.5])
def test_a_share_outside_0_to_1_is_refused(share):
    with pytest.raises(ValueError, match="share"):
        RedrawBudget(share=share)
