"""``make screenshots``: every screen rendered offscreen to ``docs/screenshots/`` at two sizes.

A real demo run fills a throw-away home first (the simulated ELPV station through the bundled
model into a fresh ledger and archive), so every screen shows what a user would see on day one.

    QT_QPA_PLATFORM=offscreen python -m ui.screenshots [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication, QEventLoop
from PySide6.QtWidgets import QWidget

if TYPE_CHECKING:
    from ui.main_window import MainWindow

SIZES = ((1920, 1080), (1366, 768))
SHOT_PASSWORD = "screenshot-only-1"  # an account in a throw-away ledger, deleted with it


def pump(seconds: float, until: Callable[[], bool] | None = None) -> None:
    """Let Qt run (workers report back, timers tick) for up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        if until is not None and until():
            return
        time.sleep(0.02)


def prepare_home(home: Path) -> None:
    """A short real run of the demo station, so Review and Models have something to show."""
    from inspector.line.build import LineRequest, build_pipeline
    from inspector.line.demo import demo_model_path
    from inspector.registry import Registry

    registry = Registry(home)
    version = registry.add(demo_model_path(), note="bundled demo model (ELPV)")
    registry.deploy(version.id)
    pipeline = build_pipeline(
        LineRequest(
            source="sim?fps=0",
            home=home,
            model="demo",
            frames=160,
            station="demo-elpv",
            lot="LOT-0001",
            operator="ana",
            drop="block",
        )
    )
    pipeline.run()


def save(widget: QWidget, out: Path, name: str, size: tuple[int, int]) -> Path:
    widget.resize(*size)
    pump(0.6)
    path = out / f"{name}-{size[0]}x{size[1]}.png"
    widget.grab().save(str(path))
    print(f"wrote {path}")
    return path


def render(out: Path) -> list[Path]:
    from ui.app import _application
    from ui.context import AppContext
    from ui.main_window import MainWindow

    app = _application()  # noqa: F841 - the QApplication must exist first
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="inspector-shots-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        prepare_home(home)
        context = AppContext(home)
        window = MainWindow(context)
        window.show()
        window.live.overlay.setChecked(True)
        window.live.start(source="sim?fps=12", model="demo", station="demo-elpv")
        pump(60, lambda: int(window.live.counter_labels["total"].text() or 0) >= 40)
        for size in SIZES:
            window.tabs.setCurrentWidget(window.live)
            written.append(save(window, out, "live", size))
        window.live.controller.stop_and_wait()
        pump(1.0)
        for tab, name in (
            (window.review, "review"),
            (window.finetune, "finetune"),
            (window.models, "models"),
            (window.settings, "settings"),
        ):
            window.tabs.setCurrentWidget(tab)
            pump(8.0, lambda t=tab: getattr(t, "ready_for_screenshot", lambda: True)())
            if tab is window.review:
                window.review.table.selectRow(0)
                pump(3.0)
            for size in SIZES:
                written.append(save(window, out, name, size))
        written += render_wizard(window, out)
        written += render_sign_in(window, out)
        window.close()
        context.close()
    return written


def render_sign_in(window, out: Path) -> list[Path]:  # window: ui.main_window.MainWindow
    """Once accounts exist: the login, the signed-in status bar (Models, as an engineer) and the
    signature a deploy asks for. Adds accounts to the window's throw-away ledger, so it comes last."""
    from inspector.access import Actor
    from inspector.accounts import add_user
    from ui.login_dialog import LoginDialog
    from ui.session import where
    from ui.signature_dialog import SignatureDialog

    context = window.context
    add_user(context.db_url, None, "ana", "engineer", SHOT_PASSWORD)
    context.accounts, context.actor = True, Actor("ana", "engineer")
    window.session.badge.show_actor(context.actor)
    window.apply_actor(context.actor)
    written = []
    login = LoginDialog(context.db_url, where(context.db_url), name="ana")
    login.password.setText("••••••••")
    login.say("wrong user name or password")
    login.show()
    pump(0.5)
    written.append(_grab(login, out, "login"))
    login.close()
    window.tabs.setCurrentWidget(window.models)
    pump(5.0, lambda: window.models.reloads > 0)
    for size in SIZES:
        written.append(save(window, out, "signed-in", size))
    signature = SignatureDialog(
        context.db_url,
        context.actor,
        "deploy",
        "Deploy v2 in place of v1. Reason: “new lamp on line 2, gate passed”",
        window,
    )
    signature.show()
    pump(0.5)
    written.append(_grab(signature, out, "signature"))
    signature.close()
    window.session.lock()
    pump(0.5)
    written.append(save(window, out, "locked", SIZES[1]))
    written.append(_grab(window.session.dialog, out, "locked-login"))
    window.session.close()
    return written


def _grab(widget: QWidget, out: Path, name: str) -> Path:
    path = out / f"{name}.png"
    widget.grab().save(str(path))
    print(f"wrote {path}")
    return path


def elpv_station(root: Path, per_class: int = 150) -> Path:
    """A small 'new station' from ELPV cells, under a stronger lighting, for the wizard to adapt to."""
    import cv2

    from data.augment import apply, build_augmentation
    from data.elpv import load_elpv
    from data.images import read_image

    shift = build_augmentation(["lighting"], severity=2, seed=0)
    counts: dict[str, int] = {}
    for sample in load_elpv(0).split("test"):
        if counts.get(sample.label, 0) >= per_class:
            continue
        counts[sample.label] = counts.get(sample.label, 0) + 1
        folder = root / sample.label
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / sample.path.name), apply(shift, read_image(sample.path)))
    return root


def render_wizard(
    window, out: Path, station: Path | None = None, epochs: int = 3, prefix: str = "wizard"
) -> list[Path]:  # window: ui.main_window.MainWindow
    """All six wizard pages with a real run of ``epochs``, on ``station`` (default: a small
    lighting-shifted ELPV station), adapting the deployed model."""
    written = []
    with tempfile.TemporaryDirectory(prefix="inspector-station-") as tmp:
        station = station or elpv_station(Path(tmp) / "station")
        wizard = window.finetune.open_wizard()
        page = wizard.station_page
        page.path.setText(str(station))
        page.check()
        pump(60, lambda: not page.busy)
        steps = [
            ("1-station", lambda: True),
            ("2-augmentation", lambda: wizard.augment_page.rendered),
            ("3-what-trains", lambda: True),
            ("4-training", lambda: wizard.train_page.summary is not None or bool(wizard.train_page.failed)),
            ("5-before-after", lambda: wizard.compare_page.speed is not None),
            ("6-save", lambda: True),
        ]
        for index, (name, ready) in enumerate(steps):
            if index:
                if name == "4-training":
                    wizard.recipe_page.epochs.setValue(epochs)
                wizard.next()
            pump(1800, ready)
            for size in SIZES:
                written.append(save(wizard, out, f"{prefix}-{name}", size))
        wizard.reject()
        pump(2.0)
    return written


def render_wizard_on(base: Path, station: Path, out: Path, epochs: int, prefix: str) -> list[Path]:
    """The wizard alone, adapting ``base`` (registered and deployed in a throw-away home) to ``station``."""
    from inspector.registry import Registry
    from ui.app import _application
    from ui.context import AppContext
    from ui.main_window import MainWindow

    app = _application()  # noqa: F841 - the QApplication must exist first
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="inspector-shots-") as tmp:
        home = Path(tmp) / "home"
        registry = Registry(home)
        registry.deploy(registry.add(base, note=f"base for the wizard: {base.name}").id)
        context = AppContext(home)
        window = MainWindow(context)
        window.show()
        written = render_wizard(window, out, station, epochs, prefix)
        window.close()
        context.close()
    return written


@contextmanager
def demo_window(out: Path) -> Iterator[MainWindow]:
    """The app's main window over a throw-away home with the demo model deployed (no run)."""
    from inspector.line.demo import demo_model_path
    from inspector.registry import Registry
    from ui.app import _application
    from ui.context import AppContext
    from ui.main_window import MainWindow

    app = _application()  # noqa: F841 - the QApplication must exist first
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="inspector-shots-") as tmp:
        home = Path(tmp) / "home"
        registry = Registry(home)
        registry.deploy(registry.add(demo_model_path(), note="bundled demo model (ELPV)").id)
        context = AppContext(home)
        window = MainWindow(context)
        window.show()
        try:
            yield window
        finally:
            window.close()
            context.close()


def render_speed(out: Path) -> list[Path]:
    """The Models screen's *Speed on this PC* for the demo model (int8 gated on ELPV: a minute)."""
    with demo_window(out) as window:
        models = window.models
        window.tabs.setCurrentWidget(models)
        pump(5.0, lambda: models.reloads > 0)
        models.table.selectRow(0)
        models.bench_selected()
        pump(600.0, lambda: models.bench is not None)
        return [save(window, out, "models-speed", size) for size in SIZES]


def render_sign_in_only(out: Path) -> list[Path]:
    """The sign-in pictures alone, in a throw-away home with the demo model deployed."""
    with demo_window(out) as window:
        return render_sign_in(window, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument(
        "--wizard",
        nargs=2,
        type=Path,
        metavar=("BASE", "STATION"),
        help="Only the fine-tune wizard, adapting the bundle BASE to the station folder STATION.",
    )
    parser.add_argument("--epochs", type=int, default=3, help="The wizard's training epochs.")
    parser.add_argument("--prefix", default="wizard", help="File name prefix of the wizard's pages.")
    parser.add_argument(
        "--sign-in", action="store_true", help="Only the login, the signed-in header and the signature."
    )
    parser.add_argument("--speed", action="store_true", help="Only the Models screen's Speed on this PC.")
    args = parser.parse_args()
    if args.speed:
        render_speed(args.out)
    elif args.sign_in:
        render_sign_in_only(args.out)
    elif args.wizard:
        render_wizard_on(*args.wizard, args.out, args.epochs, args.prefix)
    else:
        render(args.out)


if __name__ == "__main__":
    main()
