"""A desktop without Qt's system libraries: one line that says what to install, then the headless demo."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from typer.testing import CliRunner

from inspector.cli import app
from ui import platform_check

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or shutil.which("ldd") is None, reason="Linux with ldd"
)
# System libraries PySide6's xcb plugin links to directly; the test breaks the first it finds.
NEEDED = (b"libxcb-cursor.so.0", b"libxcb-icccm.so.4", b"libxcb-keysyms.so.1", b"libxcb.so.1")


@pytest.fixture
def broken_plugins(tmp_path) -> tuple[Path, str]:
    """A copy of Qt's real xcb plugin that needs a library no system has (``….so.9``).

    The copy keeps its own Qt libraries (its RUNPATH ``$ORIGIN/../../lib`` points at Qt's); only
    one system library's name is changed in its dynamic section, byte for byte.
    """
    real = platform_check.plugin_dirs()[-1] / "libqxcb.so"
    if not real.is_file():
        pytest.skip("this PySide6 has no xcb plugin")
    data = real.read_bytes()
    name = next((n for n in NEEDED if n + b"\0" in data), None)
    if name is None:
        pytest.skip("the xcb plugin links none of the libraries this test knows")
    gone = name[:-1] + b"9"
    plugins = tmp_path / "qt" / "plugins" / "platforms"
    plugins.mkdir(parents=True)
    (plugins / "libqxcb.so").write_bytes(data.replace(name + b"\0", gone + b"\0"))
    (tmp_path / "qt" / "lib").symlink_to(real.parents[2] / "lib", target_is_directory=True)
    return plugins, gone.decode()


def test_a_broken_platform_plugin_is_one_line_naming_the_library_and_the_install_commands(broken_plugins):
    plugins, gone = broken_plugins
    found = platform_check.missing_libraries(["xcb"], [plugins])
    assert found is not None and found[0] == "xcb" and gone in found[1]
    assert not any(name.startswith("libQt6") for name in found[1])  # Qt's own libraries resolve
    message = platform_check.missing_message(*found)
    assert "\n" not in message and gone in message
    assert "sudo apt install" in message and "sudo dnf install" in message
    assert f"'{gone}()(64bit)'" in message  # an unknown library: dnf installs what provides it


def test_known_libraries_become_package_names():
    message = platform_check.missing_message(
        "xcb", ["libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxkbcommon-x11.so.0"]
    )
    assert "sudo apt install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0`" in message
    assert "sudo dnf install xcb-util-cursor xcb-util-wm xcb-util-keysyms libxkbcommon-x11`" in message
    assert "reinstall PySide6" in platform_check.missing_message("xcb", ["libQt6XcbQpa.so.6"])


def test_demo_says_what_to_install_then_runs_headless(broken_plugins, monkeypatch, tmp_path):
    plugins, gone = broken_plugins
    monkeypatch.setattr(platform_check, "plugin_dirs", lambda: [plugins])
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":99")
    result = CliRunner().invoke(app, ["demo", "--frames", "4", "--fps", "0", "--home", str(tmp_path / "h")])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "cannot open a window" in line)
    assert gone in line and "sudo apt install" in line and "sudo dnf install" in line
    assert "running the demo station headless" in result.output and "unaccounted" in result.output
    result = CliRunner().invoke(app, ["gui", "--home", str(tmp_path / "h")])
    assert result.exit_code == 2 and gone in result.output and "Traceback" not in result.output


def test_when_the_libraries_are_there_qt_itself_is_asked(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert platform_check.probe_qt() is None  # a real QGuiApplication started in a child
    monkeypatch.setenv("QT_QPA_PLATFORM", "nosuchplatform")
    message = platform_check.window_problem()
    assert message is not None and "\n" not in message
    assert 'Could not find the Qt platform plugin "nosuchplatform"' in message
