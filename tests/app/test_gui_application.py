"""The application object: what ``app.gui.create_application`` sets up for the window."""
import sys

import pytest

from app.gui import GIL_SWITCH_SECONDS, create_application


@pytest.fixture
def default_switch_interval():
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)  # Python's own default
    yield
    sys.setswitchinterval(before)


def test_the_window_gets_the_gil_back_from_a_training_thread_within_a_millisecond(qapp, default_switch_interval):
    app = create_application([])
    assert app is qapp and app.applicationName() == "DigitLab"
    assert GIL_SWITCH_SECONDS <= 0.001 and sys.getswitchinterval() == pytest.approx(GIL_SWITCH_SECONDS)
