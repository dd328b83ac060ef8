"""The engineer's CLI contract end to end on tiny data: train, eval --json, finetune, models."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from inspector.cli import app

runner = CliRunner()


def test_train_eval_finetune_deploy_via_cli(tiny_station, tmp_path):
    model, home = tmp_path / "m", tmp_path / "home"
    result = runner.invoke(
        app,
        [
            "train",
            str(tiny_station),
            "--out",
            str(model),
            "--epochs",
            "2",
            "--img-size",
            "32",
            "--batch-size",
            "16",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and (model / "model.json").is_file()

    again = runner.invoke(app, ["train", str(tiny_station), "--out", str(model), "--epochs", "1"])
    assert again.exit_code == 2 and "already exists" in again.output

    report = tmp_path / "r.json"
    result = runner.invoke(app, ["eval", str(model), str(tiny_station), "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert "macro-F1" in result.output and json.loads(report.read_text())["n"] > 0

    result = runner.invoke(
        app,
        [
            "finetune",
            str(model),
            str(tiny_station),
            "--out",
            str(tmp_path / "f"),
            "--epochs",
            "1",
            "--augment",
            "lighting,optics",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "before" in result.output and "after" in result.output

    for args in (
        ["models", "deploy", str(model)],
        ["models", "deploy", str(tmp_path / "f")],
        ["models", "rollback"],
    ):
        result = runner.invoke(app, [*args, "--home", str(home)])
        assert result.exit_code == 0, result.output
    listing = runner.invoke(app, ["models", "list", "--home", str(home)])
    assert listing.exit_code == 0 and "v1" in listing.output and "v2" in listing.output


def test_bad_inputs_are_one_line(tiny_station, tmp_path):
    cases = [
        (["train", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")], "no such dataset"),
        (
            ["train", str(tiny_station), "--out", str(tmp_path / "x"), "--augment", "fog"],
            "unknown augmentation",
        ),
        (["train", str(tiny_station), "--out", str(tmp_path / "x"), "--merge", "magic"], "--merge must be"),
        (["eval", str(tmp_path / "nomodel"), str(tiny_station)], "no such model folder"),
        (["models", "rollback", "--home", str(tmp_path / "h")], "nothing to roll back"),
        (["models", "deploy", "v7", "--home", str(tmp_path / "h")], "no model version 'v7'"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert not (tmp_path / "x").exists()
