"""Training steps reuse the memory earlier steps freed: no page faults per step (engine.train.allocator)."""
import platform
import subprocess
import sys

import pytest

SCRIPT = """
import resource, sys, numpy as np
import engine.train.allocator as allocator
if sys.argv[1] == "off":
    allocator._done.append(False)  # as if the thresholds had never been set
from engine.nn.models import lenet_spec, make_cnn
from engine.nn.optimizers import make_optimizer
from engine.train.config import TrainSettings
from engine.train.stepper import Stepper
rng = np.random.default_rng(0)
x, t = rng.random((1000, 784), dtype=np.float32), rng.integers(0, 10, 1000)
s = Stepper(make_cnn(lenet_spec(), seed=0), make_optimizer("adam", lr=0.003), x, t,
            settings=TrainSettings(batch_size=50, epochs=1), evaluate_epochs=False)
for _ in range(5):
    s.step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    s.step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def faults_per_step(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=120, check=True)
    return float(out.stdout.strip())


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="the malloc thresholds are glibc's (a no-op elsewhere)")
def test_a_training_step_takes_no_fresh_pages_once_running():
    kept = faults_per_step("on")
    default = faults_per_step("off")  # glibc's own thresholds: each step's temporaries come back as new pages
    assert kept < 20, f"{kept:.0f} page faults per step"
    assert default > 10 * max(kept, 1), f"the measurement shows nothing: {default:.0f} faults per step without it"
