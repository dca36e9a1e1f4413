"""Can the window open here? Checked before Qt is loaded, so a wrong display is one clear line, not Qt's abort.

Without this, a ``DISPLAY`` with no X server behind it (or none at all, or a system library Qt's X11
plugin needs) makes Qt print "From 6.5.0, xcb-cursor0 or libxcb-cursor0 is needed …", whatever the real
cause, and abort the process (exit 134, a core dump). ``display_problem()`` works out which platform
plugins Qt will try, as Qt does (``QT_QPA_PLATFORM``, else Wayland in a Wayland session, then X11), and
for each one checks what Qt would need: its plugin file, the system libraries it links to (``ldd``), and a
display server that answers (for X11: an X connection made through libxcb as Qt makes it, which also checks
the authorisation; it stays open until ``release()``, see ``_connect_and_hold``). Pure standard library and
ctypes: no Qt is imported.
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

HINT = "run it on a desktop, or under a virtual display (xvfb-run -a digitlab); the sub-commands need none " \
       "(digitlab --help)"
CONNECT_TIMEOUT = 2.0  # seconds to wait for a remote X server (ssh -X forwards to localhost:10 and up)
LDD_TIMEOUT = 10.0
UNIX_LIKE = ("linux", "freebsd", "openbsd", "netbsd")

# What Qt's platform plugins and GUI libraries link to, by Debian/Ubuntu package: from ``ldd`` of
# libqxcb.so, the xcb GL integrations, libqwayland.so and libQt6Gui/Widgets/OpenGL, mapped with ``dpkg -S``
# on Debian 12. The README's "System libraries" section lists the same packages.
DEBIAN_PACKAGES = {
    "libEGL.so.1": "libegl1", "libGL.so.1": "libgl1", "libGLX.so.0": "libglx0", "libGLdispatch.so.0": "libglvnd0",
    "libOpenGL.so.0": "libopengl0",
    "libX11.so.6": "libx11-6", "libX11-xcb.so.1": "libx11-xcb1", "libXau.so.6": "libxau6", "libXdmcp.so.6": "libxdmcp6",
    "libxcb.so.1": "libxcb1", "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb-icccm.so.4": "libxcb-icccm4", "libxcb-image.so.0": "libxcb-image0", "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0", "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0", "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0", "libxcb-sync.so.1": "libxcb-sync1", "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0", "libxcb-xkb.so.1": "libxcb-xkb1", "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxkbcommon.so.0": "libxkbcommon0", "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libfontconfig.so.1": "libfontconfig1", "libfreetype.so.6": "libfreetype6", "libexpat.so.1": "libexpat1",
    "libpng16.so.16": "libpng16-16", "libbrotlidec.so.1": "libbrotli1", "libbrotlicommon.so.1": "libbrotli1",
    "libglib-2.0.so.0": "libglib2.0-0", "libgthread-2.0.so.0": "libglib2.0-0", "libdbus-1.so.3": "libdbus-1-3",
    "libwayland-client.so.0": "libwayland-client0", "libwayland-cursor.so.0": "libwayland-cursor0",
    "libwayland-egl.so.1": "libwayland-egl1",
}
PLUGIN_WORDS = {"xcb": "Qt's X11 platform plugin (xcb)", "wayland": "Qt's Wayland platform plugin"}


def display_problem(env: Mapping[str, str] | None = None, platform: str | None = None,
                    qt_dir: Path | None = None) -> str | None:
    """None when the window can open; else one line saying why not and what to do (``HINT``)."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith(UNIX_LIKE):
        return None  # Windows and macOS have their own platform plugin and always a display to show it on
    qt_dir = qt_dir if qt_dir is not None else _qt_dir()
    reasons = []
    for name in platform_candidates(env):
        reason = _platform_problem(name, env, qt_dir)
        if reason is None:
            return None
        reasons.append(reason)
    return "; ".join(dict.fromkeys(reasons)) + "; " + HINT


def platform_candidates(env: Mapping[str, str]) -> list[str]:
    """The platform plugins Qt will try, in order: as QGuiApplication chooses them on Linux."""
    explicit = env.get("QT_QPA_PLATFORM", "")
    if explicit.strip():
        names = explicit.split(";")
    else:
        names = []
        if env.get("XDG_SESSION_TYPE") == "wayland" or env.get("WAYLAND_DISPLAY"):
            names.append("wayland")
        names.append("xcb")
    return [n.split(":")[0].strip() for n in names if n.split(":")[0].strip()]


def _platform_problem(name: str, env: Mapping[str, str], qt_dir: Path | None) -> str | None:
    plugin = qt_dir / "plugins" / "platforms" / f"libq{name}.so" if qt_dir is not None else None
    if plugin is not None and not plugin.is_file():
        folder = plugin.parent
        have = sorted(p.name[4:-3] for p in folder.glob("libq*.so")) if folder.is_dir() else []
        return (f"QT_QPA_PLATFORM={name}: Qt has no platform plugin {name!r} "
                f"(available: {', '.join(have) or 'none'})")
    if name == "xcb":
        where = _x_display_problem(env)
    elif name == "wayland":
        where = _wayland_problem(env)
    else:
        where = None  # offscreen, minimal, vnc, eglfs …: nothing to connect to that we could check
    if where is not None:
        return where  # with no display server to talk to, libraries would not help: say that first
    missing = missing_libraries(plugin) if plugin is not None else []
    if missing:
        what = PLUGIN_WORDS.get(name, f"Qt's {name!r} platform plugin")
        packages = sorted({DEBIAN_PACKAGES.get(lib, lib) for lib in missing})
        return (f"{what} cannot load: these system libraries are missing: {', '.join(missing)} (Debian/Ubuntu: "
                f"sudo apt install {' '.join(packages)}; the README's \"System libraries\" lists them all)")
    return None


# ----------------------------------------------------------------------------- X11

def _x_display_problem(env: Mapping[str, str]) -> str | None:
    display = env.get("DISPLAY", "")
    if not display:
        if env.get("WAYLAND_DISPLAY") or env.get("QT_QPA_PLATFORM"):
            return "no X display: DISPLAY is not set"
        return "no display: neither DISPLAY nor WAYLAND_DISPLAY is set"
    parsed = parse_display(display)
    if parsed is None:
        return f"DISPLAY={display!r} is not an X display name (expected :0, :1 or host:0)"
    host, number = parsed
    local = host in ("", "unix")
    if not local and not _connects_tcp(host, 6000 + number):  # libxcb would wait minutes for an unreachable host
        return f"no X server answers on DISPLAY={display} (cannot connect to {host} port {6000 + number})"
    refused = _connect_and_hold(display)
    if refused is None:
        return None
    path = f"/tmp/.X11-unix/X{number}"
    if local and not (_connects(socket.AF_UNIX, "\0" + path) or _connects(socket.AF_UNIX, path)):
        return f"no X server answers on DISPLAY={display} (nothing listens at {path})"
    return f"the X server on DISPLAY={display} refused the connection ({refused})"


def parse_display(display: str) -> tuple[str, int] | None:
    """(host, display number) of an X display name such as ':0', ':1.0', 'unix:0' or 'localhost:10.0'."""
    host, colon, rest = display.rpartition(":")
    if not colon:
        return None
    number = rest.split(".")[0]
    if not number.isdigit():
        return None
    host = host[len("unix/"):] if host.startswith("unix/") else host
    return (host[len("tcp/"):] if host.startswith("tcp/") else host), int(number)


def _connects(family: int, address) -> bool:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(CONNECT_TIMEOUT)
        try:
            s.connect(address)
        except OSError:
            return False
    return True


def _connects_tcp(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            return True
    except OSError:
        return False


_XCB_ERRORS = {
    1: "it closed the connection: not authorised? check XAUTHORITY, or xhost on the server",
    5: "the display name could not be parsed", 6: "the screen in DISPLAY does not exist",
}


_held: dict = {}  # the X connection the check opened: {"display", "xcb", "connection"}


def _connect_and_hold(display: str) -> str | None:
    """Why libxcb cannot open ``display`` (the handshake Qt makes, authorisation included), or None.

    A connection that worked stays open until ``release()``: an X server with no other client (Xvfb under
    xvfb-run) resets when its last client leaves and refuses connections while it does, so closing this one
    before Qt has connected would make Qt's own connection fail now and then.
    """
    if _held.get("display") == display:
        return None
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return None  # missing: missing_libraries() names it
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(display.encode(), None)
    if not connection:
        return "libxcb could not allocate a connection"
    code = xcb.xcb_connection_has_error(connection)
    if code != 0:
        xcb.xcb_disconnect(connection)
        return _XCB_ERRORS.get(code, f"libxcb error {code}")
    release()
    _held.update(display=display, xcb=xcb, connection=connection)
    return None


def release() -> None:
    """Close the X connection the check kept open (call it once the QApplication exists)."""
    if _held:
        _held["xcb"].xcb_disconnect(_held["connection"])
        _held.clear()


# ----------------------------------------------------------------------------- Wayland

def _wayland_problem(env: Mapping[str, str]) -> str | None:
    name = env.get("WAYLAND_DISPLAY") or "wayland-0"
    runtime = env.get("XDG_RUNTIME_DIR", "")
    path = name if name.startswith("/") else os.path.join(runtime, name) if runtime else ""
    if not path:
        return "no Wayland display: XDG_RUNTIME_DIR is not set"
    if not _connects(socket.AF_UNIX, path):
        return f"no Wayland compositor answers at {path}"
    return None


# ----------------------------------------------------------------------------- system libraries

def missing_libraries(path: Path, run: Callable[[list[str]], str] | None = None) -> list[str]:
    """The shared libraries ``path`` needs that the dynamic loader cannot find (``ldd``; [] when ldd is absent)."""
    run = run if run is not None else _run_ldd
    try:
        text = run(["ldd", str(path)])
    except (OSError, subprocess.SubprocessError):
        return []
    return not_found(text)


def not_found(ldd_output: str) -> list[str]:
    """'libfoo.so.1' for each 'libfoo.so.1 => not found' line of ldd's output, in order, once each."""
    found = [line.split("=>")[0].strip() for line in ldd_output.splitlines() if "=> not found" in line]
    return list(dict.fromkeys(found))


def _run_ldd(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        raise FileNotFoundError(argv[0])
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=LDD_TIMEOUT, env=env, check=False).stdout


def _qt_dir() -> Path | None:
    """PySide6's Qt folder (plugins/, lib/), found without importing any Qt module; None when not installed."""
    try:
        spec = importlib.util.find_spec("PySide6")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "Qt" / "plugins").is_dir():
            return Path(location) / "Qt"
    return None
