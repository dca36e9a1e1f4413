"""Before Qt loads: a wrong or missing display, or a missing system library, is one clear line and exit 1,
never Qt's abort (exit 134) with its misleading "xcb-cursor0 is needed"."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app import display
from app.display import display_problem, not_found, parse_display, platform_candidates

ROOT = Path(__file__).resolve().parents[2]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the display check is for X11/Wayland")


def _dead_display() -> str:
    """An X display name nothing listens on (no socket file, no abstract socket)."""
    for n in range(91, 400):
        path = f"/tmp/.X11-unix/X{n}"
        if not os.path.exists(path) and not display._connects(socket.AF_UNIX, "\0" + path):
            return f":{n}"
    pytest.skip("every display number from :91 to :399 is in use")


def _env(**values) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM",
                                                              "XDG_SESSION_TYPE")}
    return {**env, **values}


@linux_only
@pytest.mark.parametrize("command", [["-m", "app.cli"], ["-m", "app.gui"]])
def test_a_display_with_no_x_server_is_one_clear_line_and_exit_1(tmp_path, command):
    dead = _dead_display()
    out = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=60, cwd=ROOT,
                         env=_env(DISPLAY=dead, DIGITLAB_CONFIG_DIR=str(tmp_path)))
    assert out.returncode == 1, out.stderr
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("digitlab: error: cannot open the window: ")
    assert f"no X server answers on DISPLAY={dead} (nothing listens at /tmp/.X11-unix/X{dead[1:]})" in out.stderr
    assert "xvfb-run -a digitlab" in out.stderr
    assert "xcb-cursor0" not in out.stderr and "Traceback" not in out.stderr and "Aborted" not in out.stderr


@linux_only
def test_the_window_opens_on_a_real_virtual_display():
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed")
    code = "from app.display import display_problem; print(display_problem())"
    first = 500 + os.getpid() % 400  # away from :99, where every other `xvfb-run -a` starts (and races)
    out = subprocess.run(["xvfb-run", "-a", "-n", str(first), sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=60, cwd=ROOT, env=_env())
    assert out.stdout.strip() == "None", out.stderr


def test_no_display_at_all_says_so():
    problem = display_problem({}, "linux")
    assert problem.startswith("no display: neither DISPLAY nor WAYLAND_DISPLAY is set;") and "xvfb-run" in problem


def test_a_dead_display_is_reported_before_any_library_check(monkeypatch):
    monkeypatch.setattr(display, "missing_libraries", lambda plugin: pytest.fail("ldd ran for nothing"))
    assert display_problem({"DISPLAY": _dead_display()}, "linux").startswith("no X server answers on DISPLAY=:")


def test_other_systems_and_displayless_platforms_need_no_check():
    assert display_problem({}, "win32") is None and display_problem({}, "darwin") is None
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert display_problem({"QT_QPA_PLATFORM": "minimal"}, "linux") is None


def test_an_unknown_platform_plugin_is_named_with_the_ones_there_are():
    problem = display_problem({"QT_QPA_PLATFORM": "nosuch"}, "linux")
    if display._qt_dir() is None:
        pytest.skip("PySide6 is not installed")
    assert "Qt has no platform plugin 'nosuch'" in problem and "offscreen" in problem and "xcb" in problem


def test_a_malformed_display_name_is_named():
    assert "DISPLAY='nonsense' is not an X display name" in display_problem({"DISPLAY": "nonsense"}, "linux")


def test_platforms_tried_as_qt_tries_them():
    assert platform_candidates({}) == ["xcb"]
    assert platform_candidates({"DISPLAY": ":0"}) == ["xcb"]
    assert platform_candidates({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}) == ["wayland", "xcb"]
    assert platform_candidates({"XDG_SESSION_TYPE": "wayland"}) == ["wayland", "xcb"]
    assert platform_candidates({"QT_QPA_PLATFORM": "offscreen"}) == ["offscreen"]
    assert platform_candidates({"QT_QPA_PLATFORM": "xcb:nograb;offscreen"}) == ["xcb", "offscreen"]


def test_display_names():
    assert parse_display(":0") == ("", 0) and parse_display(":1.0") == ("", 1)
    assert parse_display("unix:3") == ("unix", 3) and parse_display("localhost:10.0") == ("localhost", 10)
    assert parse_display("tcp/example.org:2") == ("example.org", 2)
    assert parse_display("nonsense") is None and parse_display(":x") is None


def test_a_wayland_session_without_a_compositor_falls_back_to_x_and_says_both(tmp_path):
    """With no server to talk to, that is what is said (not the libraries a plugin lacks: they would not help)."""
    problem = display_problem({"WAYLAND_DISPLAY": "wayland-9", "XDG_RUNTIME_DIR": str(tmp_path),
                               "DISPLAY": _dead_display()}, "linux")
    assert f"no Wayland compositor answers at {tmp_path}/wayland-9" in problem and "no X server answers" in problem


def test_ldd_output_is_read_for_missing_libraries():
    text = ("\tlinux-vdso.so.1 (0x00007ffd)\n\tlibxcb-cursor.so.0 => not found\n"
            "\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f)\n\tlibxkbcommon-x11.so.0 => not found\n"
            "\tlibxcb-cursor.so.0 => not found\n")
    assert not_found(text) == ["libxcb-cursor.so.0", "libxkbcommon-x11.so.0"]


def test_missing_libraries_are_named_with_their_debian_packages(monkeypatch):
    monkeypatch.setattr(display, "_x_display_problem", lambda env: None)  # an X server answers
    monkeypatch.setattr(display, "missing_libraries", lambda plugin: ["libxcb-cursor.so.0", "libxkbcommon-x11.so.0"])
    problem = display_problem({"DISPLAY": ":0"}, "linux")
    if display._qt_dir() is None:
        pytest.skip("PySide6 is not installed")
    assert problem.startswith("Qt's X11 platform plugin (xcb) cannot load: these system libraries are missing: "
                              "libxcb-cursor.so.0, libxkbcommon-x11.so.0 (Debian/Ubuntu: sudo apt install "
                              "libxcb-cursor0 libxkbcommon-x11-0;")


@linux_only
def test_a_plugin_whose_library_is_gone_is_found_by_ldd(tmp_path, monkeypatch):
    """A real shared object linked to a library that is then deleted: ldd reports it, the message names it."""
    monkeypatch.setattr(display, "_x_display_problem", lambda env: None)  # an X server answers
    if shutil.which("cc") is None or shutil.which("ldd") is None:
        pytest.skip("needs a C compiler and ldd")
    (tmp_path / "dep.c").write_text("int digitlab_dep(void) { return 1; }\n")
    (tmp_path / "plugin.c").write_text("int digitlab_dep(void);\nint plugin(void) { return digitlab_dep(); }\n")
    platforms = tmp_path / "Qt" / "plugins" / "platforms"
    platforms.mkdir(parents=True)
    subprocess.run(["cc", "-shared", "-fPIC", "-Wl,-soname,libdigitlabgone.so.0", "-o",
                    str(tmp_path / "libdigitlabgone.so.0"), str(tmp_path / "dep.c")], check=True, timeout=60)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(platforms / "libqxcb.so"), str(tmp_path / "plugin.c"),
                    str(tmp_path / "libdigitlabgone.so.0")], check=True, timeout=60)
    (tmp_path / "libdigitlabgone.so.0").unlink()
    assert display.missing_libraries(platforms / "libqxcb.so") == ["libdigitlabgone.so.0"]
    problem = display_problem({"DISPLAY": ":0"}, "linux", qt_dir=tmp_path / "Qt")
    assert "these system libraries are missing: libdigitlabgone.so.0" in problem


def test_the_readme_s_system_libraries_are_the_ones_the_check_knows_and_ci_installs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("### System libraries"):]
    command = block[block.index("sudo apt install"):block.index("```", block.index("sudo apt install"))]
    packages = set(command.replace("\\", " ").split()[3:])
    assert {"libxcb-cursor0", "libxkbcommon-x11-0", "libegl1", "libfontconfig1", "libdbus-1-3"} <= packages
    assert packages <= set(display.DEBIAN_PACKAGES.values()), packages - set(display.DEBIAN_PACKAGES.values())
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert all(f" {p} " in ci.replace("\\\n", " ") for p in packages), [p for p in packages if f" {p} " not in ci]
