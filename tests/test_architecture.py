"""The layout from the design card holds: layers checked by import-linter, small modules, no optional imports."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "app", "widgets")
MAX_MODULE_LINES = 400
MAX_MAIN_WINDOW_LINES = 300
MAX_ENGINE_TOP_MODULES = 6


def modules(*packages: str) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


def test_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    command = [str(lint)] if lint.exists() else ["lint-imports"]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    counts = re.search(r"Contracts: (\d+) kept, (\d+) broken", out.stdout)
    assert counts, out.stdout
    assert int(counts.group(1)) >= 3 and int(counts.group(2)) == 0


@pytest.mark.parametrize("path", modules(*PACKAGES), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_longer_than_400_lines(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines; split it by concern"


def test_the_main_window_is_a_thin_frame():
    tree = ast.parse((ROOT / "app" / "main_window.py").read_text(encoding="utf-8"))
    (window,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "MainWindow"]
    lines = window.end_lineno - window.lineno + 1
    assert lines <= MAX_MAIN_WINDOW_LINES, f"MainWindow has {lines} lines"


def test_the_engine_is_grouped_into_subpackages():
    top = sorted(p.name for p in (ROOT / "engine").glob("*.py"))
    assert len(top) <= MAX_ENGINE_TOP_MODULES, top
    for package in ("nn", "train", "data", "weightfiles", "labs"):
        assert (ROOT / "engine" / package / "__init__.py").is_file(), package


def _project_imports(node: ast.AST) -> list[str]:
    names = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Import):
            names += [a.name for a in sub.names]
        elif isinstance(sub, ast.ImportFrom) and sub.module and sub.level == 0:
            names.append(sub.module)
    return [n for n in names if n.split(".")[0] in PACKAGES]


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    caught = handler.type
    kinds = caught.elts if isinstance(caught, ast.Tuple) else [caught]
    return caught is None or any(isinstance(k, ast.Name) and k.id in ("ImportError", "ModuleNotFoundError",
                                                                        "Exception", "BaseException")
                                 for k in kinds)


def optional_project_imports(source: str, strict: bool = True) -> list[str]:
    """Places that import the project's own code so that a failure is swallowed or looked up by name.

    ``strict`` (the packages themselves) also refuses dynamic imports of names computed at run time;
    tests may import a module they wrote into a temporary folder that way.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers):
            found += [f"line {node.lineno}: try: import {n}" for n in _project_imports(ast.Module(node.body, []))]
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in ("__import__", "import_module", "find_spec", "importorskip"):
                args = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                if (strict and not args) or any(a.split(".")[0] in PACKAGES for a in args):
                    found.append(f"line {node.lineno}: {name}({', '.join(map(repr, args))})")
    return found


def test_the_optional_import_check_finds_what_it_looks_for():
    assert optional_project_imports("try:\n    from app.labs import x\nexcept ImportError:\n    pass\n")
    assert optional_project_imports("m = __import__('app.compare_panel')\n")
    assert optional_project_imports("for m in names:\n    __import__(m)\n")
    assert not optional_project_imports("mod = __import__(name)\n", strict=False)
    assert optional_project_imports("import pytest\npytest.importorskip('engine.weights')\n")
    assert not optional_project_imports("try:\n    import torch\nexcept ImportError:\n    torch = None\n")


@pytest.mark.parametrize("path", modules(*PACKAGES, "tests", "bench", "docs"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_projects_own_modules_are_never_imported_optionally(path):
    if path == Path(__file__).resolve():
        return  # this file spells the patterns out on purpose
    strict = path.relative_to(ROOT).parts[0] in PACKAGES
    assert not optional_project_imports(path.read_text(encoding="utf-8"), strict), path.relative_to(ROOT)
