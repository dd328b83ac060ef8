"""The live-line commands as a plant integrator scripts them."""

from __future__ import annotations

import csv
import io
import re

import pytest
from typer.testing import CliRunner

from inspector.cli import app

runner = CliRunner()


def test_run_then_export_csv(tiny_station, tmp_path):
    home, db = tmp_path / "home", f"sqlite:///{tmp_path / 'line.db'}"
    result = runner.invoke(
        app,
        [
            "run",
            "--source",
            f"{tiny_station}?fps=0",
            "--model",
            "demo",
            "--db",
            db,
            "--frames",
            "20",
            "--drop",
            "block",
            "--lot",
            "L7",
            "--home",
            str(home),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "run summary" in result.output and re.search(r"unaccounted\s+0\b", result.output)
    out = tmp_path / "results.csv"
    result = runner.invoke(app, ["results", "export", "--db", db, "--lot", "L7", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 20 and {r["lot"] for r in rows} == {"L7"}
    assert {"prob_ok", "prob_defect"} <= set(rows[0])
    result = runner.invoke(app, ["results", "export", "--db", db, "--verdict", "nope"])
    assert result.exit_code == 2 and "unknown verdict" in result.output


def test_run_with_a_missing_source_is_one_line(tmp_path):
    result = runner.invoke(app, ["run", "--source", str(tmp_path / "gone"), "--home", str(tmp_path)])
    assert result.exit_code == 2
    assert "no such folder, file or camera" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["run", "--source", "7", "--home", str(tmp_path), "--frames", "1"])
    assert result.exit_code == 2 and "camera 7: cannot open" in result.output


def test_run_with_a_truncated_model_is_one_line(tiny_station, tmp_path):
    import shutil

    from inspector.line.demo import demo_model_path

    broken = tmp_path / "broken"
    shutil.copytree(demo_model_path(), broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    result = runner.invoke(
        app, ["run", "--source", str(tiny_station), "--model", str(broken), "--home", str(tmp_path)]
    )
    assert result.exit_code == 2 and "checksum mismatch" in result.output


def test_db_upgrade_and_a_file_that_is_not_a_database(tmp_path):
    db = tmp_path / "fresh.db"
    result = runner.invoke(app, ["db", "upgrade", "--db", f"sqlite:///{db}"])
    assert result.exit_code == 0 and "up to date" in result.output and db.is_file()
    junk = tmp_path / "junk.db"
    junk.write_text("this is not sqlite " * 100)
    result = runner.invoke(app, ["db", "upgrade", "--db", f"sqlite:///{junk}"])
    assert result.exit_code == 2 and "junk.db" in result.output and "Traceback" not in result.output


def test_headless_demo_runs_the_simulated_station(tmp_path):
    import pytest

    try:
        from data.elpv import elpv_root

        elpv_root()
    except Exception:
        pytest.skip("elpv-dataset not installed")
    result = runner.invoke(
        app,
        [
            "demo",
            "--headless",
            "--frames",
            "24",
            "--fps",
            "0",
            "--drift-after",
            "12",
            "--home",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "simulated elpv station" in result.output and "unaccounted" in result.output


def _one_line_error(result, text: str) -> None:
    """Exit 2 with one line naming the problem: no traceback (CliRunner keeps those in .exception)."""
    assert result.exit_code == 2, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert text in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_results_export_bad_times_are_one_line(tmp_path):
    db = f"sqlite:///{tmp_path / 'line.db'}"
    _one_line_error(
        runner.invoke(app, ["results", "export", "--db", db, "--since", "999999d"]), "--since 999999d"
    )
    _one_line_error(runner.invoke(app, ["results", "export", "--db", db, "--until", "yesterday"]), "ISO 8601")
    # Reversed, the export was an empty CSV and exit 0; the report already refused it.
    reversed_window = ["--since", "2026-01-02", "--until", "2026-01-01"]
    result = runner.invoke(app, ["results", "export", "--db", db, *reversed_window])
    _one_line_error(result, "--until must be later than --since")
    assert not (tmp_path / "line.db").exists()


def test_results_export_writes_through_a_link_and_refuses_a_fifo(tmp_path):
    import os
    import stat

    db = _empty_ledger(tmp_path)
    real, link = tmp_path / "real.csv", tmp_path / "link.csv"
    real.write_text("old")
    link.symlink_to(real)
    result = runner.invoke(app, ["results", "export", "--db", db, "--out", str(link)])
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and real.read_text() != "old"
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    _one_line_error(runner.invoke(app, ["results", "export", "--db", db, "--out", str(fifo)]), "pipe.csv")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def _empty_ledger(tmp_path) -> str:
    """The URL of a new, empty ledger (commands that only read refuse a database that is not there)."""
    from inspector.store import Ledger

    url = f"sqlite:///{tmp_path / 'line.db'}"
    Ledger(url).close()
    return url


def test_read_only_commands_create_no_folder_and_no_database(tmp_path):
    """``results export -o /missing/dir/x.csv`` made the folders, and ``--db`` naming a new file
    (in a new folder) made an empty ledger there, for commands that only read."""
    db, home = _empty_ledger(tmp_path), str(tmp_path / "home")
    report = ["report", "--lot", "L", "--no-twin", "--home", home]
    for args in (["results", "export", "--db", db], [*report, "--db", db]):
        result = runner.invoke(app, [*args, "--out", str(tmp_path / "missing" / "dir" / "x.csv")])
        _one_line_error(result, "folder does not exist")
    assert not (tmp_path / "missing").exists()
    for url in (f"sqlite:///{tmp_path / 'new' / 'dir' / 'x.db'}", f"sqlite:///{tmp_path / 'absent.db'}"):
        _one_line_error(
            runner.invoke(app, ["results", "export", "--db", url, "--home", home]), "no such database"
        )
        result = runner.invoke(app, [*report, "--db", url, "--out", str(tmp_path / "r.pdf")])
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
        assert result.output.strip().splitlines()[-1].startswith("error: ")  # after "reading the ledger…"
        assert "no such database" in result.output
    assert not (tmp_path / "new").exists() and not (tmp_path / "absent.db").exists()
    assert not (tmp_path / "r.pdf").exists()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ('{"db_url": "x"', "settings.json: unreadable settings"),
        ('{"db_url": 5}', "settings.json: db_url must be a text"),
        ('{"archive_cap_gib": NaN}', "settings.json: archive_cap_gib must be a finite number"),
        ('{"unsure_below": 7.5}', "settings.json: unsure_below must be between 0 and 1"),
        (
            '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "settings.json: unreadable settings (nested too deeply",
        ),
    ],
)
def test_bad_settings_are_one_line_naming_the_file(tmp_path, settings, message):
    (tmp_path / "settings.json").write_text(settings)
    _one_line_error(runner.invoke(app, ["db", "upgrade", "--home", str(tmp_path)]), message)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--source", "{station}", "--fps", "-5"], "--fps -5.0"),
        (["run", "--source", "{station}", "--fps", "nan"], "--fps nan"),
        (["run", "--source", "{station}", "--fps", "inf"], "--fps inf"),
        (["run", "--source", "linescan:{station}?height=0&overlap=-5"], "height=0"),
        (["run", "--source", "linescan:{station}?height=32&overlap=40"], "overlap 40"),
        (["demo", "--headless", "--fps", "nan"], "--fps nan"),
    ],
)
def test_out_of_range_line_options_are_one_line(tiny_station, tmp_path, args, message):
    """They used to run unpaced, or with the defaults, without a word."""
    args = [a.format(station=tiny_station) for a in args]
    _one_line_error(runner.invoke(app, [*args, "--frames", "2", "--home", str(tmp_path)]), message)


def test_demo_drift_after_must_not_be_negative(tmp_path):
    args = ["demo", "--headless", "--frames", "2", "--drift-after", "-1", "--home", str(tmp_path)]
    _one_line_error(runner.invoke(app, args), "--drift-after")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["run", "--frames", "0"], "--frames"),
        (["run", "--queue", "0"], "--queue"),
        (["run", "--bogus"], "--bogus"),
        (["train", "--epochs", "0"], "--epochs"),
        (["train", "x", "--img-size", "31"], "--img-size"),
        (["models", "audit", "--limit", "0"], "--limit"),
        (["results", "export", "--limit", "ten"], "--limit"),
    ],
)
def test_usage_errors_are_this_clis_one_line_not_clicks_usage_block(tmp_path, args, named):
    """Click's own range and usage checks print a usage block and a boxed panel; ours say one line."""
    _one_line_error(runner.invoke(app, [*args, "--home", str(tmp_path)]), named)
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_no_arguments_still_prints_the_help(tmp_path):
    for args in ([], ["models"], ["results"]):
        result = runner.invoke(app, args)
        assert "Usage" in result.output and "Commands" in result.output, (args, result.output)


def test_a_bad_output_url_is_one_line_before_anything_opens(tmp_path):
    for url, problem in (
        ("ftp://x", "unknown scheme 'ftp'"),
        ("mqtt://ana:hunter2@broker:70000", "bad port"),
        ("modbus://plc.example:5020", "binds an IP address"),
    ):
        result = runner.invoke(
            app, ["run", "--source", "sim", "--output", url, "--home", str(tmp_path), "--frames", "1"]
        )
        assert result.exit_code == 2, result.output
        assert problem in result.output and "Traceback" not in result.output
        assert "hunter2" not in result.output
    assert not (tmp_path / "inspector.db").exists()  # refused before the ledger was opened


def test_a_password_holding_an_at_sign_stays_out_of_the_error_line(tmp_path):
    """The output mask stopped at the first '@' (the parser splits at the last); SQLAlchemy read
    'top' as the password of host 'secret@127.0.0.1', which every message then named."""
    for option, url in (
        ("--output", "mqtt://ana:top@secret@broker?keepalive=1"),
        ("--output", "opc.tcp://ana:top@secret@127.0.0.1:4840?x=1"),
        ("--db", "postgresql+psycopg://ana:top@secret@127.0.0.1:1/ledger"),
    ):
        result = runner.invoke(
            app, ["run", "--source", "sim", option, url, "--home", str(tmp_path), "--frames", "1"]
        )
        assert result.exit_code != 0 and "Traceback" not in result.output, result.output
        assert "ana:***@" in result.output and "secret" not in result.output, result.output


def test_demo_headless_with_an_output(tmp_path):
    from ledger_support import free_port

    url = f"modbus://127.0.0.1:{free_port()}?reject=NG"
    result = runner.invoke(
        app, ["demo", "--headless", "--frames", "4", "--fps", "0", "--output", url, "--home", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "stopped (4 sent)" in result.output and url in result.output, result.output


def test_run_and_demo_help_show_the_output_option():
    for command in ("run", "demo"):
        result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "240"})
        assert result.exit_code == 0, result.output
        assert "--output" in result.output and "opc.tcp://127.0.0.1:4840" in result.output
