"""Live and Fine-tune with accounts (issue 27): the run is the signed-in person's, the line refuses a
start without a login once accounts exist, and fine-tuning is offered to engineers only."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from access_support import add_three, cheap_hashing  # noqa: F401 - a fixture

from inspector.access import Actor
from inspector.line.build import LineRequest
from inspector.store import default_url
from ui.context import AppContext
from ui.finetune_view import FinetuneView
from ui.line_controller import LineController
from ui.live_view import LiveView


@pytest.fixture
def home(tmp_path, cheap_hashing):  # noqa: F811 - the fixture imported above
    add_three(default_url(tmp_path))
    return tmp_path


def test_no_line_starts_without_a_login_once_accounts_exist(qtbot, home):
    context = AppContext(home)  # the local user of old: accounts were added behind the app's back
    controller = LineController(context)
    with qtbot.waitSignal(controller.failed, timeout=20_000) as failed:
        controller.start(LineRequest(source="sim?fps=0", home=home, model="demo", frames=5))
    assert failed.args[0].startswith("running the line needs a login: accounts exist on")
    assert not controller.running and not controller.starting
    context.close()


def test_the_run_is_the_signed_in_persons(qtbot, home):
    context = AppContext(home)
    view = LiveView(context)
    qtbot.addWidget(view)
    view.set_actor(Actor("cy", "operator"))
    assert view.operator.text() == "cy"
    view.controller.stop_and_wait()
    context.close()


def test_fine_tuning_is_offered_to_engineers_only(qtbot, home):
    context = AppContext(home)
    context.accounts, context.actor = True, Actor("bo", "qa")
    view = FinetuneView(context)
    qtbot.addWidget(view)
    view.set_actor(context.actor)
    assert not view.start_button.isEnabled() and not view.recalibrate_button.isEnabled()
    assert view.open_wizard() is None and view.wizard is None
    assert view.message.text() == "fine-tuning a model needs the engineer role (bo is qa)"
    context.actor = Actor("ana", "engineer")
    view.set_actor(context.actor)
    assert view.start_button.isEnabled() and view.recalibrate_button.isEnabled()
    assert view.message.text() == ""
    context.close()
