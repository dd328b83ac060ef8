"""Can Qt open a window here? Asked before the app tries, so a newcomer reads what to install.

Without it, a desktop that lacks Qt's xcb libraries (``libxcb-cursor0``, ``libxcb-icccm4``,
``libxcb-keysyms1`` … on a fresh Debian or Ubuntu) ends ``inspector gui`` / ``make demo`` with
Qt's own "could not load the Qt platform plugin xcb … aborting", which names no package.

Two looks, cheapest first, both outside this process (a failed Qt start aborts its process):

1. ``ldd`` on the platform plugin Qt will load (and its Qt libraries): the system libraries it
   needs that the dynamic linker cannot find, turned into ``apt`` and ``dnf`` package names;
2. where nothing is missing, a real start of a ``QGuiApplication`` in a child Python, whose
   failure (no display, a refused connection) is reported by its first line.

Only Linux is checked: the Windows and macOS wheels carry their platform plugin's libraries.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

PROBE_TIMEOUT_S = 60.0
PROBE = (
    "import sys\n"
    "from PySide6.QtGui import QGuiApplication\n"
    "app = QGuiApplication(sys.argv[:1])\n"
    "print(app.platformName())\n"
)

# soname → (Debian/Ubuntu package, Fedora package): what PySide6's xcb and wayland plugins need
# beyond a minimal system. Unknown names fall back to Debian's naming rule and dnf's provides.
PACKAGES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-xinerama.so.0": ("libxcb-xinerama0", "libxcb"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-glx.so.0": ("libxcb-glx0", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libSM.so.6": ("libsm6", "libSM"),
    "libICE.so.6": ("libice6", "libICE"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libGLX.so.0": ("libglx0", "libglvnd-glx"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libwayland-client.so.0": ("libwayland-client0", "libwayland-client"),
    "libwayland-cursor.so.0": ("libwayland-cursor0", "libwayland-cursor"),
    "libwayland-egl.so.1": ("libwayland-egl1", "libwayland-egl"),
}
NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)
CANNOT_OPEN = re.compile(r"(lib[\w.+-]+\.so[\d.]*): cannot open shared object file")


def window_problem() -> str | None:
    """Why the desktop app cannot open a window here, in one line; None when it can."""
    if not sys.platform.startswith("linux"):
        return None
    platforms = _platforms()
    if "offscreen" in platforms or "minimal" in platforms:
        return None  # asked for on purpose (tests, screenshots): nothing to show on a screen
    if not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or "QT_QPA_PLATFORM" in os.environ
    ):
        return "no display: the app needs a desktop session"
    missing = missing_libraries(platforms)
    if missing is not None:
        platform, libraries = missing
        return missing_message(platform, libraries)
    return probe_qt()


def _platforms() -> list[str]:
    """The platform plugins Qt will try, in order (``QT_QPA_PLATFORM``, else Qt's own choice)."""
    asked = os.environ.get("QT_QPA_PLATFORM", "")
    if asked:
        return [name.split(":", 1)[0].strip() for name in asked.split(";") if name.strip()]
    if os.environ.get("XDG_SESSION_TYPE") == "wayland" and os.environ.get("WAYLAND_DISPLAY"):
        return ["wayland", "xcb"]
    return ["xcb"]


def plugin_dirs() -> list[Path]:
    """Where Qt looks for platform plugins: ``QT_QPA_PLATFORM_PLUGIN_PATH`` first, then its own."""
    dirs = []
    extra = os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH")
    if extra:
        dirs.append(Path(extra))
    from PySide6.QtCore import QLibraryInfo

    dirs.append(Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms")
    return dirs


def missing_libraries(platforms: list[str], dirs: list[Path] | None = None) -> tuple[str, list[str]] | None:
    """(platform, missing sonames) when every platform Qt would try lacks a library; None when
    one of them has all it needs, or when this cannot be told (no ``ldd``, no plugin file)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return None
    first: tuple[str, list[str]] | None = None
    for platform in platforms:
        plugins = [d / f"libq{platform}.so" for d in (dirs or plugin_dirs())]
        found = [p for p in plugins if p.is_file()]
        if not found:
            return None  # a platform we cannot inspect: let the probe decide
        results = [_not_found(ldd, plugin) for plugin in found]
        if any(result == [] for result in results):
            return None  # one copy loads: Qt falls back to it
        usable = [r for r in results if r]
        if not usable:
            return None
        if first is None:
            first = (platform, list(dict.fromkeys(name for names in usable for name in names)))
    return first


def _not_found(ldd: str, plugin: Path) -> list[str] | None:
    try:
        done = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    names = list(dict.fromkeys(NOT_FOUND.findall(done.stdout)))
    return names


def missing_message(platform: str, libraries: list[str]) -> str:
    """The one line: what is missing, and the command that installs it on Debian/Ubuntu and Fedora."""
    qt_own = [name for name in libraries if name.startswith("libQt6")]
    system = [name for name in libraries if not name.startswith("libQt6")]
    parts = [f"the desktop app cannot open a window: Qt's {platform} platform plugin"]
    if system:
        apt = " ".join(dict.fromkeys(_apt(name) for name in system))
        dnf = " ".join(dict.fromkeys(_dnf(name) for name in system))
        parts.append(
            f" needs system libraries that are missing ({', '.join(system)}) — install them: "
            f"Debian/Ubuntu `sudo apt install {apt}`, Fedora `sudo dnf install {dnf}`"
        )
    if qt_own:
        parts.append(
            (" and" if system else "") + f" cannot find Qt's own {', '.join(qt_own)} — reinstall PySide6 "
            "(`pip install --force-reinstall PySide6-Essentials`)"
        )
    return "".join(parts) + " (README: System packages for the desktop app)"


def _apt(soname: str) -> str:
    if soname in PACKAGES:
        return PACKAGES[soname][0]
    # Debian's rule: libfoo.so.N → libfooN, libfoo-1.so.N → libfoo-1-N (digit meets digit)
    stem, _, version = soname.partition(".so.")
    version = version.split(".")[0]
    joiner = "-" if stem[-1:].isdigit() else ""
    return (stem + joiner + version).lower()


def _dnf(soname: str) -> str:
    return PACKAGES[soname][1] if soname in PACKAGES else f"'{soname}()(64bit)'"


def probe_qt() -> str | None:
    """Start a QGuiApplication in a child Python: the one test that asks Qt itself."""
    env = dict(os.environ, QT_DEBUG_PLUGINS="1")
    try:
        done = subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, env=env
        )
    except subprocess.TimeoutExpired:
        return f"the desktop app cannot open a window: Qt did not start within {PROBE_TIMEOUT_S:g} s"
    except OSError as exc:
        return f"the desktop app cannot open a window: {exc}"
    if done.returncode == 0:
        return None
    output = done.stderr + done.stdout
    libraries = list(dict.fromkeys(CANNOT_OPEN.findall(output)))
    if libraries:
        return missing_message(_platforms()[0], libraries)
    return f"the desktop app cannot open a window: {_qt_reason(output)}"


def _qt_reason(output: str) -> str:
    """The line of Qt's output that says why (not its plugin-search chatter)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    qpa = [line for line in lines if line.startswith("qt.qpa") and "From 6.5.0" not in line]
    for wanted in (
        lambda line: "could not connect to display" in line.lower(),
        lambda line: line in qpa and "could not" in line.lower(),
        lambda line: line in qpa,
        lambda line: "failed to start" in line,
    ):
        found = [line for line in lines if wanted(line)]
        if found:
            return found[-1]
    return lines[-1] if lines else "Qt's platform plugin did not start"
